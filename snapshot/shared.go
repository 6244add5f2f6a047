package snapshot

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
)

// SharedName returns the storage name of an SST uploaded for checkpoint
// creator by writer writerID, whose file in the writer's database is local
// (such as "000123.sst"). The writer id is drawn afresh each time a
// backend is opened or restored, so the name is unique to one writer: two
// processes restored from one checkpoint, whose databases share their file
// numbers (and perhaps their instance id), never write the same name. The
// creator's id lets garbage collection tell old debris from uploads of
// checkpoints still in flight.
func SharedName(writerID string, creator int64, local string) string {
	return fmt.Sprintf("%s/%s-c%d-%s", SharedDir, writerID, creator, local)
}

var sharedName = regexp.MustCompile(`^shared/[0-9a-f]+-c(\d+)-[^/]+$`)

// sharedCreator returns the id of the checkpoint that uploaded a shared
// file, if the name is one SharedName makes.
func sharedCreator(name string) (int64, bool) {
	m := sharedName.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	return id, err == nil
}

// SharedRefs returns the shared files the checkpoints ids reference, with
// how many of the checkpoints' handles reference each: the registry of
// shared files, rebuilt from the metadata, which is its only record.
func SharedRefs(ctx context.Context, st Storage, ids []int64) (map[string]int, error) {
	cps := make([]*Checkpoint, 0, len(ids))
	for _, id := range ids {
		cp, err := Load(ctx, st, id)
		if err != nil {
			return nil, err
		}
		cps = append(cps, cp)
	}
	return sharedRefsOf(cps), nil
}

// sharedRefsOf counts the references of the checkpoints' handles to
// each shared file.
func sharedRefsOf(cps []*Checkpoint) map[string]int {
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

// collectShared deletes the shared files that no retained checkpoint
// references and that were uploaded by a checkpoint no newer than newest,
// the newest completed one: files of dropped checkpoints, and debris of
// crashed or aborted ones. Uploads of checkpoints newer than newest may be
// in flight and are kept. It returns how many files it deleted.
func collectShared(ctx context.Context, st Storage, retained []*Checkpoint, newest int64) (int, error) {
	refs := sharedRefsOf(retained)
	names, err := st.List(ctx, SharedDir+"/")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		creator, ok := sharedCreator(name)
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
