/*
 * quote: Go's %q of a string (strconv.Quote), the form kube's messages
 * quote names and values in ("Invalid value: \"a,b\"", `Verbs:["get"]`).
 * The one copy the selectors, server-side apply and the authorizer's
 * escalation messages use.
 *
 * What is escaped, as strconv.Quote does: `"` and `\`; \a \b \f \n \r \t \v
 * by name; other ASCII controls and DEL as \xNN; each byte of invalid
 * UTF-8 as \xNN; the C1 controls, U+00AD, U+2028 and U+2029 (runes Go does
 * not print) as \uNNNN. Other UTF-8 passes through. Go escapes a few more
 * unprinted runes (unassigned code points, formatting marks beyond U+00AD),
 * which names and values here do not hold.
 *
 * Pure functions, thread-safe.
 */
#ifndef EDGE_APIM_QUOTE_H
#define EDGE_APIM_QUOTE_H

#include <stddef.h>

#include "../lib/sbuf.h"

/* Writes the quoted form of the n bytes at s, quotes included, into dst
 * (cap bytes, NUL-terminated when cap > 0; cut short, never mid-escape,
 * when it does not fit) and returns its whole length, as snprintf does:
 * the result was cut when the return is >= cap. */
size_t quote_go(char *dst, size_t cap, const char *s, size_t n);

/* Appends the quoted form to b (an allocation failure sets b->oom, as
 * every sbuf append does). */
void quote_go_sb(sbuf_t *b, const char *s, size_t n);

#endif
