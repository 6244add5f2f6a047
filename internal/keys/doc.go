// Package keys defines how state entries are laid out as Pebble keys:
//
//	[state id: 2 bytes BE][key group: 1 or 2 bytes BE][key][namespace][map user key]
//
// State id 0 is reserved for the backend's own records (state metadata);
// user states get ids 1 to 0xFFFE. The key group takes one byte when the max
// parallelism is at most 128 and two bytes otherwise, as in Flink.
//
// The key and the namespace are each encoded as a component: a codec with a
// fixed size writes its bytes as they are; any other codec's bytes are
// preceded by their length as a uvarint. Each component is therefore
// self-delimiting, so no encoded (key, namespace) pair is a prefix of
// another's, and a prefix scan over one pair's map entries never reaches
// another pair's. The map user key is the last component and is written raw.
package keys
