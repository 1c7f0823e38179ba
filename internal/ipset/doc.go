// Package ipset answers "is this address allowed?" for the IP allowlist in
// O(log n) without allocating, however many entries there are.
//
// A Set is an immutable union of prefixes stored as two sorted slices of
// closed ranges: IPv4 as uint32 [lo, hi] pairs and IPv6 as 128-bit [lo, hi]
// pairs (two uint64 halves). NewSet sorts the ranges and merges the ones
// that overlap or touch, so the slices are strictly ordered and disjoint and
// a lookup is a single binary search for the first range ending at or after
// the address. A prefix is always one contiguous range, so 10,000 entries of
// any lengths make at most 10,000 ranges (usually fewer after merging).
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are treated as the IPv4
// address they carry, in lookups and in prefixes: ::ffff:10.0.0.0/104 is
// stored as 10.0.0.0/8, and an IPv6 prefix that covers the mapped block
// (::/0, ::ffff:0:0/96) also covers all of IPv4. Zones are ignored. A
// dual-stack listener that reports 10.1.2.3 as ::ffff:10.1.2.3 therefore
// gets the same answer either way.
//
// A Policy is the compiled allowlist for every user (the semantics are in
// notes/allowlist-design.md): the global Set plus, per user, a Set of the
// admins' grants and a Set of the user's own entries, looked up in a map by
// user ID. Compile drops the rules already expired and remembers the
// earliest future expiry (ValidUntil), after which the caller must compile
// again, so an expired grant is refused even if the workflow that disables
// it is late.
package ipset
