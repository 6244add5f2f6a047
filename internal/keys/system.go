package keys

// The backend's own records live under state id 0 and a one-byte tag.
const (
	tagBackendMeta = 'B'
	tagStateMeta   = 'S'
)

// BackendMetaKey is the key of the backend's metadata record.
func BackendMetaKey() []byte {
	return append(AppendStateID(nil, SystemID), tagBackendMeta)
}

// StateMetaPrefix is the prefix of every state-metadata record.
func StateMetaPrefix() []byte {
	return append(AppendStateID(nil, SystemID), tagStateMeta)
}

// StateMetaKey is the key of the metadata record of the named state.
func StateMetaKey(name string) []byte {
	return append(StateMetaPrefix(), name...)
}
