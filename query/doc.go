// Package query turns the query string of a REST request into a
// tandem.Query. It only parses and checks shape: whether an attribute exists
// or a literal fits its type is decided by the store, which knows the schema.
//
// The syntax is modelled on PostgREST. Every parameter that is not reserved
// filters on the attribute of that name (the primary key included):
//
//	name=Alice              equality (a value without a known "op." prefix)
//	balance=gt.100          op.value with op one of eq, ne, gt, ge, lt, le, prefix
//	name=prefix.Al          strings starting with "Al"
//	status=in.(a,b,"c,d")   membership in a list
//	name=eq.gt.5            equality with the literal "gt.5"
//	name=eq.                equality with the empty string
//
// Repeating a filter parameter ANDs the filters (balance=gt.1&balance=lt.9).
// An empty value (name=) is an error. Reserved parameters:
//
//	or=(attr.op.value,...)  one OR group of up to 100 alternatives, each
//	                        written like a filter value prefixed by the
//	                        attribute (attr.value means equality; in is not
//	                        allowed inside or). Several or parameters give
//	                        several groups, all of which must hold.
//	sort=attr, sort=-attr   ascending / descending order on one attribute
//	limit=N                 page size, 1 <= N <= tandem.MaxLimit
//	cursor=...              opaque cursor from a previous page (<= 4 KiB)
//	select=a,b,c            attributes to return (no duplicates)
//	count=true|false        return only the number of matches
//	consistency, min_index  read options, ignored here (the API reads them)
//
// sort, limit, cursor, select and count may appear at most once.
//
// Lists (the argument of in, and of or) are written in parentheses and
// separated by commas. Double quotes protect commas and parentheses: they may
// enclose a whole item or any part of one and are removed; inside quotes \"
// and \\ stand for a quote and a backslash. An empty item must be quoted
// (""). A list holds at least one item and at most 1000 (100 for or).
//
// Filters come out sorted by attribute name (then in the order given), so
// that the same URL always yields the same Query; cursors depend on it.
// Every error is a *tandem.Error with CodeInvalid naming the parameter.
package query
