package snapshot

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
)

// SharedName returns the storage name of an SST uploaded by checkpoint
// creator of instance instanceID, whose file in the instance's database is
// local (such as "000123.sst"). The instance id makes it unique across
// instances and across forks of one database, whose file numbers collide;
// the creator's id lets garbage collection tell old debris from uploads of
// checkpoints still in flight.
func SharedName(instanceID string, creator int64, local string) string {
	return fmt.Sprintf("%s/%s-c%d-%s", SharedDir, instanceID, creator, local)
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
	refs := make(map[string]int)
	for _, id := range ids {
		cp, err := Load(ctx, st, id)
		if err != nil {
			return nil, err
		}
		for _, h := range cp.Handles {
			for _, f := range h.Shared {
				refs[f.Name]++
			}
		}
	}
	return refs, nil
}

// collectShared deletes the shared files that no retained checkpoint
// references and that were uploaded by a checkpoint no newer than newest,
// the newest completed one: files of dropped checkpoints, and debris of
// crashed or aborted ones. Uploads of checkpoints newer than newest may be
// in flight and are kept.
func collectShared(ctx context.Context, st Storage, retained []int64, newest int64) error {
	refs, err := SharedRefs(ctx, st, retained)
	if err != nil {
		return err
	}
	names, err := st.List(ctx, SharedDir+"/")
	if err != nil {
		return err
	}
	for _, n := range names {
		creator, ok := sharedCreator(n)
		if !ok || refs[n] > 0 || creator > newest {
			continue
		}
		if err := st.Delete(ctx, n); err != nil {
			return err
		}
	}
	return nil
}
