/* log.c: one escaped stderr line per message, with its priority in the form the reader understands. */
#include "basic/log.h"
#include "basic/escape.h"

#include <stdarg.h>

void log_line(int priority, const char *fmt, ...) {
        static int journal = -1;
        va_list ap;
        int r;

        /* Under systemd stderr is a journal stream: "<N>" carries the priority there. */
        if (journal < 0)
                journal = getenv("JOURNAL_STREAM") != NULL;
        if (journal)
                fprintf(stderr, "<%d>", priority);
        else
                fputs(priority <= LOG_ERR ? "pullwatch: error: " : priority <= LOG_WARNING ? "pullwatch: warning: " : "pullwatch: ",
                      stderr);
        /* Arguments carry image names and the runtime's and registry's words: one escaped line, so
         * none can end it early or start a line of its own with a forged "<N>" priority. */
        va_start(ap, fmt);
        r = vfprintf_line(stderr, fmt, ap);
        va_end(ap);
        if (r < 0)
                fputs("(out of memory)\n", stderr);
}
