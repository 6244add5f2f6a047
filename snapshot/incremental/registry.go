package incremental

import (
	"context"
	"slices"

	"github.com/pebblestate/pebblestate/snapshot"
)

// The shared-file registry. Files in shared/ are named by
// snapshot.SharedName; the
// only record of who references them is the metadata of the completed
// checkpoints, from which SharedRefs counts the references and
// CollectShared deletes what nothing retained references.

// SharedRefs returns the shared files the checkpoints ids reference, with
// how many of the checkpoints' handles reference each: the registry of
// shared files, rebuilt from the metadata, which is its only record.
func SharedRefs(ctx context.Context, st snapshot.Storage, ids []int64) (map[string]int, error) {
	cps := make([]*snapshot.Checkpoint, 0, len(ids))
	for _, id := range ids {
		cp, err := snapshot.Load(ctx, st, id)
		if err != nil {
			return nil, err
		}
		cps = append(cps, cp)
	}
	return refsOf(cps), nil
}

// refsOf counts the references of the checkpoints' handles to each shared
// file.
func refsOf(cps []*snapshot.Checkpoint) map[string]int {
	refs := make(map[string]int)
	for _, cp := range cps {
		for _, h := range cp.Handles {
			for _, f := range h.Shared {
				refs[f.Name]++
			}
		}
	}
	return refs
}

// CollectShared deletes the shared files that no checkpoint of retained
// references and that were uploaded by a checkpoint no newer than newest,
// the newest completed one: files of dropped checkpoints, and debris of
// crashed or aborted ones. Uploads of checkpoints newer than newest may be
// in flight and are kept, as are files snapshot.SharedName did not name.
// It returns how many files it deleted.
//
// retained must be every checkpoint that is kept: a file only a missing
// one references is deleted. Retention (package snapshot/retention) calls
// it once it has discarded the checkpoints it drops.
func CollectShared(ctx context.Context, st snapshot.Storage, retained []*snapshot.Checkpoint, newest int64) (int, error) {
	refs := refsOf(retained)
	names, err := st.List(ctx, snapshot.SharedDir+"/")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		creator, ok := snapshot.SharedCreator(name)
		if !ok || refs[name] > 0 || creator > newest {
			continue
		}
		if err := st.Delete(ctx, name); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Present returns the files of prev (by local name, as History.Reusable
// returns them) that st lists. A file of the last completed checkpoint can
// be gone: another writer's retention (a zombie's, which committed a newer
// checkpoint first) deletes what no retained checkpoint references. Such a
// file is uploaded again rather than referenced, so the checkpoint can
// still commit.
func Present(ctx context.Context, st snapshot.Storage, prev map[string]snapshot.SharedFile) (map[string]snapshot.SharedFile, error) {
	if len(prev) == 0 {
		return prev, nil
	}
	names, err := st.List(ctx, snapshot.SharedDir+"/")
	if err != nil {
		return nil, err
	}
	out := make(map[string]snapshot.SharedFile, len(prev))
	for local, f := range prev {
		if _, ok := slices.BinarySearch(names, f.Name); ok {
			out[local] = f
		}
	}
	return out, nil
}
