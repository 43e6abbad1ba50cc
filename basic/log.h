/* log.h: the daemon's log lines on stderr: "<N>" priority prefixes when stderr is a journal stream
 * (JOURNAL_STREAM set, as under systemd), "pullwatch: warning: " and the like otherwise. Every line is
 * built with escape.h, so untrusted parts cannot end it early or forge a priority. */
#pragma once

#include <syslog.h>
#include "basic/macro.h"

void log_line(int priority, const char *fmt, ...) _printf_(2, 3);
