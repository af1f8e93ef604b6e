// Package patterns finds what failing syncs have in common: the
// combinations of attributes (system, direction, field, hour of day, day of
// month, weekday, and record attributes the host names, such as region)
// under which attempts fail far more often than usual, ranked, as readable
// hypotheses:
//
//	21% of failures are warehouse writes between 03:00 and 04:00 on day 1,
//	for region=EU (rate 90% against a base rate of 3.6%; 377 of 419 attempts
//	failed; errors: permanent 100%)
//
// It is plain, deterministic counting over the observations it is given: no
// model, no sampling, no external service. The same observations, in any
// order, give the same patterns.
//
// # Input
//
// An [Observation] is one attempt (a read or a write of one system) and
// whether it failed. Rates need the attempts that succeeded as well as the
// ones that failed: [FromEvents] turns an audit log into observations
// (write.succeeded is a successful write; write.failed, write.refused and a
// write.dead_lettered that no write.failed explains are failed writes;
// read.failed and record.quarantined are failed reads). The audit log holds
// no event for a read that succeeded, so a host that wants read patterns
// adds its successful reads itself (from its cycle reports); without them
// every read observed is a failure and reads tell nothing.
//
// # Attributes
//
// Each observation holds items, attribute=value pairs: system, direction
// ("read" or "write"), field (one item per distinct field of the attempt,
// so that a write of email and phone holds field=email and field=phone),
// hour ("03": 03:00 to 04:00 in [Options.Location], UTC by default), day
// (of the month, "1" to "31"), weekday ("Monday") and each host attribute
// with a value. An observation without a time holds no time items. An
// itemset (at most one item per attribute, at most [Options.MaxItems]
// items) covers the observations that hold all its items; every count
// below is a count of observations, so that a write of two fields counts
// once in field=email, once in field=phone, and once in an itemset that
// names neither.
//
// The error class is not an item: only failures have one, so the failure
// rate of any itemset naming it is 100% and tells nothing. Each pattern
// reports instead how its failures divide among classes.
//
// # Statistics
//
// With n observations of which F failed, the base rate is p0 = F/n. For an
// itemset S covering n_S observations of which f_S failed:
//
//   - support: f_S, and its share f_S/F of all failures; S is mined only
//     if f_S >= max(MinFailures, ceil(MinShare*F)) (anti-monotone, so
//     mining is level-wise, Apriori style, over bitsets of the
//     observations);
//   - rate r_S = f_S/n_S and lift r_S/p0;
//   - score: the lower bound of the Wilson score interval of r_S (z =
//     [Options.Z], 1.96 by default) divided by p0, a lift that small
//     samples cannot inflate. S is a candidate if its score is at least
//     MinLift;
//   - S must stand on its own: for every mined itemset T whose cover
//     strictly contains that of S (the proper subsets of S, the empty set
//     included, and any itemset of items that every observation of S
//     holds), the observations T covers and S does not must fail clearly
//     less often: the Wilson lower bound of r_S must be at least Margin
//     times the Wilson upper bound of their rate. So a superset that adds
//     an irrelevant item, or {field=price, ...} standing in for
//     {direction=write, ...} when only writes have fields, gives way to
//     the itemset that isolates the cause. Itemsets covering the same
//     observations are equivalent: the one with fewer items (then the
//     first in lexical order) ranks first and the other adds nothing
//     after it (below). The canonical form of a cause is thus the
//     smallest itemset that isolates it.
//
// Candidates are ranked by score, then by failures, then by fewer items,
// then by their items compared in order (attribute in the order above, host
// attributes by name, then value, lexically). They are then taken in that order,
// each only if it still stands out once the observations of the patterns
// already taken are set aside (the failures left number at least the
// support threshold, and their Wilson lower bound over p0 is at least
// MinLift): so a subset of a cause, whose rate is high only because it
// contains the cause, is not reported after it. A pattern's figures are
// those of its whole itemset.
//
// # Cost
//
// Memory is one bit per observation for each item frequent among failures
// (at most about 1/MinShare values per attribute) and a few words per
// observation; time grows with the number of frequent itemsets, each
// counted with one pass over the bitsets. See BenchmarkFind.
package patterns
