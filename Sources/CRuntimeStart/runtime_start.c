/*
 * The one function of the Swift runtime's CommandLine.cpp that the standard library calls,
 * _swift_stdlib_getUnsafeArgvArgc, defined here for strait-cni's static executable. The definition keeps the
 * linker from pulling that object out of libswiftCore.a, and with it its static constructor, which reads
 * /proc/self/maps at every start to find argv on the stack: work at every exec of a process that reads two
 * arguments (see BENCHMARKS.md, "CNI ADD against the kernel floor"). glibc hands argc and argv to each
 * .init_array function, in a static executable too, and that is how they are kept here.
 * Linked into strait-cni alone. Should a later runtime need that object for something else, the link fails with
 * a duplicate symbol instead of changing behaviour unseen.
 */
static int argument_count;
static char **arguments;

static void keep_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    argument_count = argc;
    arguments = argv;
}

__attribute__((section(".init_array"), used)) static void (*const keep_arguments_at_start)(int, char **, char **) =
    keep_arguments;

char **_swift_stdlib_getUnsafeArgvArgc(int *count) {
    *count = argument_count;
    return arguments;
}
