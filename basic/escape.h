/* escape.h: untrusted text (registry and runtime error texts, image names, label values) made safe for
 * one stderr or journal MESSAGE line. Pure; journald's structured fields keep the raw bytes instead. */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include "basic/macro.h"

/* One line: control characters (C0, DEL, C1) and bytes that are not UTF-8 become \n \r \t \\ or
 * \xNN (C1 as \u00NN), a backslash becomes \\ so the result reads back unambiguously, and a leading
 * "<N>" (a syslog priority that journald would parse at line start) has its '<' written \x3c.
 * Printable ASCII and valid UTF-8 pass as they are. NULL stays NULL; NULL also on OOM. */
char *escape_line(const char *s);
/* The same into buf (always terminated; cut at a character boundary when it does not fit). */
void escape_line_buf(const char *s, char *buf, size_t size);
/* printf, then escape_line, then one "\n": a whole output line built from untrusted parts. */
int fprintf_line(FILE *f, const char *fmt, ...) _printf_(2, 3);
int vfprintf_line(FILE *f, const char *fmt, va_list ap) _printf_(2, 0);
