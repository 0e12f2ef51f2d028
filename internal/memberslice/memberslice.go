// Package memberslice keeps the members of large ChatGroups in
// ChatGroupMemberSlices, as Kubernetes keeps a Service's endpoints in
// EndpointSlices, so that a join in a 100,000-member group rewrites one
// small slice instead of the whole member list.
//
// A generation of slices has a fixed number of slices; a member lives in
// slice FNV-32a(userID) mod slices, so every member is listed exactly once
// and the slice of a changed member is known without reading anything.
// The ChatGroup's status.memberSlices names the generation and carries the
// change of the last commit; the slices are written after the status, and
// every write is idempotent and guarded by the journal seq, so they can be
// brought up to date from the status at any time (after a crash between
// the two writes, or by another replica).
package memberslice

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	imv1 "chatgroup.dev/chatgroup-operator/api/v1alpha1"
)

// Index is the slice that holds userID in a generation of n slices.
func Index(userID string, n int32) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(userID))
	return int32(h.Sum32() % uint32(n))
}

// Name is the name of slice index of generation gen of a ChatGroup.
func Name(group string, gen int64, index int32) string {
	return fmt.Sprintf("%s-%d-%d", group, gen, index)
}

// Count is the number of slices a generation gets for members members when
// slices are filled to fill members on average.
func Count(members, fill int) int32 {
	return int32(max(1, (members+fill-1)/fill))
}

// Selector selects the slices of a ChatGroup's generation gen.
func Selector(group string, gen int64) string {
	return fmt.Sprintf("%s=%s,%s=%d", imv1.GroupLabel, group, imv1.SliceGenerationLabel, gen)
}

// Store reads and writes member slices.
type Store struct {
	// Client writes slices; Reader reads them from the API server, never
	// a cache, since every read decides a write.
	Client client.Client
	Reader client.Reader
}

// Load returns the members of a sliced ChatGroup as of its status: the
// slices of status.memberSlices.generation with the last commit's change
// applied, sorted by userID. It fails when a member is listed twice or in
// the wrong slice, which only a hand-edited slice can cause.
func (s Store) Load(ctx context.Context, cg *imv1.ChatGroup) ([]imv1.GroupMember, error) {
	ms := cg.Status.MemberSlices
	var list imv1.ChatGroupMemberSliceList
	if err := s.Reader.List(ctx, &list, client.InNamespace(cg.Namespace),
		client.MatchingLabels{imv1.GroupLabel: cg.Name, imv1.SliceGenerationLabel: strconv.FormatInt(ms.Generation, 10)}); err != nil {
		return nil, fmt.Errorf("listing the member slices of ChatGroup %s: %w", cg.Name, err)
	}
	byID := map[string]imv1.GroupMember{}
	for i := range list.Items {
		sl := &list.Items[i]
		for _, m := range sl.Members {
			if _, dup := byID[m.UserID]; dup || Index(m.UserID, ms.Slices) != sl.Index {
				return nil, fmt.Errorf("member slice %s lists %q, which belongs elsewhere", sl.Name, m.UserID)
			}
			byID[m.UserID] = m
		}
	}
	for _, m := range ms.Added {
		byID[m.UserID] = m
	}
	for _, id := range ms.Removed {
		delete(byID, id)
	}
	out := make([]imv1.GroupMember, 0, len(byID))
	for _, m := range byID {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b imv1.GroupMember) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

// Changed returns the user IDs named by status.memberSlices' change.
func Changed(ms *imv1.MemberSlicesStatus) []string {
	ids := make([]string, 0, len(ms.Added)+len(ms.Removed))
	for _, m := range ms.Added {
		ids = append(ids, m.UserID)
	}
	return append(ids, ms.Removed...)
}

// Update rewrites the slices of the ChatGroup's current generation that
// hold any of the changed user IDs, from members (the full, sorted member
// list as of status.memberSlices.seq). A slice already written for that
// seq or a later one is left alone, so calling Update again, or after
// another writer, is harmless.
func (s Store) Update(ctx context.Context, cg *imv1.ChatGroup, members []imv1.GroupMember, changed []string) error {
	ms := cg.Status.MemberSlices
	parts := map[int32][]imv1.GroupMember{}
	for _, id := range changed {
		parts[Index(id, ms.Slices)] = nil
	}
	for _, m := range members {
		if part, ok := parts[Index(m.UserID, ms.Slices)]; ok {
			parts[Index(m.UserID, ms.Slices)] = append(part, m)
		}
	}
	for _, idx := range sortedKeys(parts) {
		if err := s.writeSlice(ctx, cg, idx, parts[idx]); err != nil {
			return err
		}
	}
	return nil
}

// Rewrite writes every slice of generation gen (with n slices) from
// members, as of journal seq, removing what an earlier, unfinished attempt
// at the same generation left. The generation holds nothing until the
// ChatGroup's status names it, so a crash part-way is harmless.
func (s Store) Rewrite(ctx context.Context, cg *imv1.ChatGroup, gen int64, n int32, seq int64, members []imv1.GroupMember) error {
	if err := s.Client.DeleteAllOf(ctx, &imv1.ChatGroupMemberSlice{}, client.InNamespace(cg.Namespace),
		client.MatchingLabels{imv1.GroupLabel: cg.Name, imv1.SliceGenerationLabel: strconv.FormatInt(gen, 10)}); err != nil {
		return fmt.Errorf("removing unfinished member slices of ChatGroup %s: %w", cg.Name, err)
	}
	parts := make([][]imv1.GroupMember, n)
	for _, m := range members {
		i := Index(m.UserID, n)
		parts[i] = append(parts[i], m)
	}
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(rewriteConcurrency)
	for i := range n {
		sl, err := s.newSlice(cg, gen, i, seq, parts[i])
		if err != nil {
			return err
		}
		eg.Go(func() error {
			if err := s.Client.Create(ctx, sl); err != nil {
				return fmt.Errorf("creating member slice %s: %w", sl.Name, err)
			}
			return nil
		})
	}
	return eg.Wait()
}

// rewriteConcurrency bounds the slices a rewrite creates in parallel.
const rewriteConcurrency = 8

// DeleteOthers removes the ChatGroup's slices of every generation but
// keep (all of them when keep is 0).
func (s Store) DeleteOthers(ctx context.Context, cg *imv1.ChatGroup, keep int64) error {
	sel := labels.NewSelector()
	for _, r := range []struct {
		key string
		op  selection.Operator
		val string
	}{{imv1.GroupLabel, selection.Equals, cg.Name}, {imv1.SliceGenerationLabel, selection.NotEquals, strconv.FormatInt(keep, 10)}} {
		req, err := labels.NewRequirement(r.key, r.op, []string{r.val})
		if err != nil {
			return err
		}
		sel = sel.Add(*req)
	}
	err := s.Client.DeleteAllOf(ctx, &imv1.ChatGroupMemberSlice{}, client.InNamespace(cg.Namespace),
		client.MatchingLabelsSelector{Selector: sel})
	if err != nil {
		return fmt.Errorf("removing old member slices of ChatGroup %s: %w", cg.Name, err)
	}
	return nil
}

// maxSliceConflicts bounds the retries of one slice write.
const maxSliceConflicts = 5

// writeSlice brings one slice of the current generation to part, unless it was already written for this seq or a later one.
func (s Store) writeSlice(ctx context.Context, cg *imv1.ChatGroup, idx int32, part []imv1.GroupMember) error {
	ms := cg.Status.MemberSlices
	want, err := s.newSlice(cg, ms.Generation, idx, ms.Seq, part)
	if err != nil {
		return err
	}
	for range maxSliceConflicts {
		cur := &imv1.ChatGroupMemberSlice{}
		err := s.Reader.Get(ctx, client.ObjectKeyFromObject(want), cur)
		switch {
		case apierrors.IsNotFound(err):
			err = s.Client.Create(ctx, want)
		case err != nil:
			return fmt.Errorf("reading member slice %s: %w", want.Name, err)
		case cur.Seq >= ms.Seq:
			return nil
		default:
			want.ResourceVersion = cur.ResourceVersion
			err = s.Client.Update(ctx, want)
		}
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("writing member slice %s: %w", want.Name, err)
		}
		want.ResourceVersion = ""
	}
	return fmt.Errorf("writing member slice %s: still conflicting after %d attempts", want.Name, maxSliceConflicts)
}

func (s Store) newSlice(cg *imv1.ChatGroup, gen int64, idx int32, seq int64, part []imv1.GroupMember) (*imv1.ChatGroupMemberSlice, error) {
	sl := &imv1.ChatGroupMemberSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: cg.Namespace, Name: Name(cg.Name, gen, idx),
			Labels: map[string]string{imv1.GroupLabel: cg.Name, imv1.SliceGenerationLabel: strconv.FormatInt(gen, 10)}},
		Group: cg.Name, Index: idx, Seq: seq, MemberCount: int32(len(part)), Members: part,
	}
	if err := controllerutil.SetControllerReference(cg, sl, s.Client.Scheme()); err != nil {
		return nil, fmt.Errorf("setting the owner of member slice %s: %w", sl.Name, err)
	}
	return sl, nil
}

func sortedKeys(m map[int32][]imv1.GroupMember) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
