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
// A Policy is the compiled allowlist for every user. Entries are global or
// belong to one user; a user's entry an admin made is a grant or a
// restriction. A request by user U from address A is admitted when
//
//  0. A is in one of U's restrictions, if an admin restricted U at all, and
//  1. A is in one of U's grants (an admin let U in from there), or
//  2. A is in the global list, if there is one, and in U's own entries, if
//     U made any.
//
// No entries at all admit everyone; an invalid address is refused as soon
// as any entry applies. So users can only narrow their own access, never
// widen the admins' list; a (temporary) grant lets one user in from
// outside the global list without shutting them out of the usual networks;
// and a restriction confines one user (a contractor) to its networks, so
// neither the global list nor a grant admits them from anywhere else. A
// restriction never admits by itself: to confine a user to a network
// outside the global list, an admin gives them a grant and a restriction
// for it.
//
// Compiled, it is the global Set plus, per user, a Set of the admins'
// grants, a Set of the admins' restrictions and a Set of the user's own
// entries, looked up in a map by user ID. Compile drops the rules already expired and remembers the
// earliest future expiry (ValidUntil), after which the caller must compile
// again, so an expired grant is refused even if the workflow that disables
// it is late.
package ipset
