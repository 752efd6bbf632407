// The SQLite C API for Swift. No shim functions are needed: the one macro Swift cannot
// import, SQLITE_TRANSIENT ((sqlite3_destructor_type)-1), is rebuilt in Swift by unsafeBitCast.
#include <sqlite3.h>
