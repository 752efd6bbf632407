/* CRuntimeStart has no interface of its own: its one function replaces the Swift runtime's at link time
 * (runtime_start.c says which and why). */
