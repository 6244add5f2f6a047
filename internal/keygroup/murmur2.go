package keygroup

import "encoding/binary"

// kafkaSeed is the seed of Kafka's murmur2.
const kafkaSeed = 0x9747b28c

// Murmur2 returns the 32-bit MurmurHash2 of data as Kafka's clients compute
// it (org.apache.kafka.common.utils.Utils.murmur2): seed 0x9747b28c, words
// read little-endian, the tail folded in before the final mix. Kafka
// treats the result as a signed 32-bit int; the bits are the same. It is
// the hash behind KafkaMurmur2 and must never change.
func Murmur2(data []byte) uint32 {
	const (
		m = 0x5bd1e995
		r = 24
	)
	n := len(data)
	h := uint32(kafkaSeed) ^ uint32(n)
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// KafkaPartition returns the partition Kafka's default partitioner gives a
// record with the serialized key among numPartitions partitions:
// toPositive(murmur2(key)) % numPartitions, where toPositive clears the
// sign bit. The caller checks numPartitions >= 1.
func KafkaPartition(key []byte, numPartitions int) int {
	return int(Murmur2(key)&0x7fffffff) % numPartitions
}
