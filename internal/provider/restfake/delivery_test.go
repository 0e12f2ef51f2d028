package restfake_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"chatgroup.dev/chatgroup-operator/internal/provider/restfake"
)

const planSize = 10000

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

func TestLoss_Plan_sameSeedSamePlan(t *testing.T) {
	loss := restfake.Loss{Drop: 0.3, Duplicate: 0.1, Window: 10}
	a, b := loss.Plan(seeded(14), planSize), loss.Plan(seeded(14), planSize)
	if !slices.Equal(a.Order, b.Order) || !slices.Equal(a.Dropped, b.Dropped) || !slices.Equal(a.Duplicated, b.Duplicated) {
		t.Error("two plans from the same seed differ")
	}
	if c := loss.Plan(seeded(15), planSize); slices.Equal(a.Order, c.Order) {
		t.Error("plans from different seeds are the same")
	}
}

// Each callback is dropped, delivered once or delivered twice, as the plan
// says, and the drop and duplicate shares are near the probabilities.
func TestLoss_Plan_dropsAndDuplicates(t *testing.T) {
	p := restfake.Loss{Drop: 0.3, Duplicate: 0.1, Window: 10}.Plan(seeded(14), planSize)
	seen := make([]int, planSize)
	for _, i := range p.Order {
		if i < 0 || i >= planSize {
			t.Fatalf("delivery of callback %d: not one of the %d sent", i, planSize)
		}
		seen[i]++
	}
	for i, n := range seen {
		want := 1
		switch {
		case slices.Contains(p.Dropped, i):
			want = 0
		case slices.Contains(p.Duplicated, i):
			want = 2
		}
		if n != want {
			t.Fatalf("callback %d delivered %d times, want %d", i, n, want)
		}
	}
	if len(p.Order) != planSize-len(p.Dropped)+len(p.Duplicated) {
		t.Errorf("%d deliveries, want %d sent - %d dropped + %d duplicated", len(p.Order), planSize, len(p.Dropped), len(p.Duplicated))
	}
	// Binomial counts: both bounds are more than six standard deviations out.
	if d := len(p.Dropped); d < 2700 || d > 3300 {
		t.Errorf("%d of %d dropped, want about 30%%", d, planSize)
	}
	if d, kept := len(p.Duplicated), planSize-len(p.Dropped); d < kept/10-200 || d > kept/10+200 {
		t.Errorf("%d of %d delivered twice, want about 10%%", d, kept)
	}
}

// Shuffling moves a delivery only within its window of ten: each window
// holds the same deliveries as before the shuffle, in another order.
func TestLoss_Plan_reordersWithinWindows(t *testing.T) {
	const window = 10
	ordered := restfake.Loss{Drop: 0.3, Duplicate: 0.1}.Plan(seeded(14), planSize)
	shuffled := restfake.Loss{Drop: 0.3, Duplicate: 0.1, Window: window}.Plan(seeded(14), planSize)
	if !slices.Equal(ordered.Dropped, shuffled.Dropped) || !slices.Equal(ordered.Duplicated, shuffled.Duplicated) {
		t.Fatal("the window changed what is dropped or duplicated")
	}
	if !slices.IsSorted(ordered.Order) {
		t.Fatal("without a window the deliveries are not in sending order")
	}
	moved := 0
	for start := 0; start < len(ordered.Order); start += window {
		end := min(start+window, len(ordered.Order))
		got := slices.Sorted(slices.Values(shuffled.Order[start:end]))
		if !slices.Equal(got, ordered.Order[start:end]) {
			t.Fatalf("window at %d holds %v, want %v reordered", start, shuffled.Order[start:end], ordered.Order[start:end])
		}
		if !slices.Equal(shuffled.Order[start:end], ordered.Order[start:end]) {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no window was reordered")
	}
}

func TestLoss_Plan_rules(t *testing.T) {
	rule := func(i int) restfake.DropRule {
		switch i % 3 {
		case 0:
			return restfake.DropNever
		case 1:
			return restfake.DropAlways
		}
		return restfake.DropMaybe
	}
	p := restfake.Loss{Drop: 0.5, Rule: rule}.Plan(seeded(14), 300)
	maybeDropped := 0
	for _, i := range p.Dropped {
		switch i % 3 {
		case 0:
			t.Fatalf("callback %d dropped, its rule says never", i)
		case 2:
			maybeDropped++
		}
	}
	for i := 1; i < 300; i += 3 {
		if !slices.Contains(p.Dropped, i) {
			t.Fatalf("callback %d delivered, its rule says always drop", i)
		}
	}
	if maybeDropped == 0 || maybeDropped == 100 {
		t.Errorf("%d of the 100 callbacks without a rule dropped, want some", maybeDropped)
	}
}

func TestDeliver(t *testing.T) {
	in := []string{"create", "join", "quit", "owner", "disband"}
	loss := restfake.Loss{Drop: 0.4, Duplicate: 0.5, Window: 3}
	out, p := restfake.Deliver(seeded(7), loss, in)
	if want := loss.Plan(seeded(7), len(in)); !slices.Equal(p.Order, want.Order) {
		t.Fatalf("Deliver followed plan %v, the seed gives %v", p.Order, want.Order)
	}
	if len(out) != len(p.Order) {
		t.Fatalf("%d delivered, the plan has %d", len(out), len(p.Order))
	}
	for i, j := range p.Order {
		if out[i] != in[j] {
			t.Errorf("delivery %d is %q, want %q", i, out[i], in[j])
		}
	}
}
