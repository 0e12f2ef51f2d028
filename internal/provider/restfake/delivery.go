package restfake

import "math/rand/v2"

// Loss is how a fake provider loses the callbacks it sends, as real ones
// do: some are never sent, some are sent twice, and they arrive out of
// order. It draws from a random source the test seeds, so a seed always
// gives the same deliveries.
type Loss struct {
	// Drop is the probability that a callback is not delivered.
	Drop float64
	// Duplicate is the probability that a delivered callback is
	// delivered twice.
	Duplicate float64
	// Window shuffles the deliveries within consecutive windows of this
	// many; 0 or 1 keeps their order.
	Window int
	// Rule, when set, overrides Drop for the callback at index i, for
	// example to drop chosen disbands and keep all others.
	Rule func(i int) DropRule
}

// DropRule decides whether one callback may be dropped.
type DropRule int

// The drop rules.
const (
	// DropMaybe drops the callback with probability Loss.Drop.
	DropMaybe DropRule = iota
	// DropNever always delivers the callback.
	DropNever
	// DropAlways never delivers the callback.
	DropAlways
)

// Plan is what a lossy delivery does with n callbacks, by their index in
// the order the provider would send them.
type Plan struct {
	// Order lists the deliveries in the order they are made; a
	// duplicated callback appears twice.
	Order []int
	// Dropped lists the callbacks never delivered, in sending order.
	Dropped []int
	// Duplicated lists the callbacks delivered twice, in sending order.
	Duplicated []int
}

// Plan draws the delivery of n callbacks from rng. For each callback in
// order it draws whether it is dropped (unless its rule says never or
// always), then whether a delivered one is duplicated (the duplicate
// follows it); then it shuffles each window of Window deliveries.
func (l Loss) Plan(rng *rand.Rand, n int) Plan {
	var p Plan
	for i := range n {
		rule := DropMaybe
		if l.Rule != nil {
			rule = l.Rule(i)
		}
		if rule == DropAlways || (rule == DropMaybe && rng.Float64() >= 1-l.Drop) {
			p.Dropped = append(p.Dropped, i)
			continue
		}
		p.Order = append(p.Order, i)
		if rng.Float64() < l.Duplicate {
			p.Order = append(p.Order, i)
			p.Duplicated = append(p.Duplicated, i)
		}
	}
	if l.Window > 1 {
		for start := 0; start < len(p.Order); start += l.Window {
			w := p.Order[start:min(start+l.Window, len(p.Order))]
			rng.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
		}
	}
	return p
}

// Deliver returns the callbacks a lossy provider delivers, in the order it
// delivers them, and the plan it followed.
func Deliver[T any](rng *rand.Rand, l Loss, callbacks []T) ([]T, Plan) {
	p := l.Plan(rng, len(callbacks))
	out := make([]T, len(p.Order))
	for i, j := range p.Order {
		out[i] = callbacks[j]
	}
	return out, p
}
