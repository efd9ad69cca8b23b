# A coordinator's reply, as a frame of octal escapes for printf: Envelope
# {version 1, seq 1, ChunkMap{chunk_size, size, N slots}} where slot i is
# on poold PREFIX(BASE + i).  Variables: n, chunk, prefix, base.
#   awk -v n=257 -v chunk=16777216 -v prefix=10.99.0.1: -v base=20000 -f fake-map.awk
function varint(n,   k) {
	k = 0
	do {
		b[k] = n % 128
		n = int(n / 128)
		if (n > 0)
			b[k] += 128
		k++
	} while (n > 0)
	return k
}
function put_varint(n,   k, i) {
	k = varint(n)
	for (i = 0; i < k; i++)
		out[nout++] = b[i]
}
function put_str(t,   i) {
	put_varint(length(t))
	for (i = 1; i <= length(t); i++)
		out[nout++] = ord[substr(t, i, 1)]
}
BEGIN {
	for (i = 32; i < 127; i++)
		ord[sprintf("%c", i)] = i
	# Sizes first: each slot, the map, the envelope.
	maplen = 1 + varint(chunk) + 1 + varint(n * chunk)
	for (i = 0; i < n; i++) {
		a = prefix (base + i)
		sl[i] = 1 + varint(i) + 1 + varint(length(a)) + length(a) + 2
		maplen += 1 + varint(sl[i]) + sl[i]
	}
	envlen = 2 + 2 + 2 + varint(maplen) + maplen
	nout = 0
	out[nout++] = int(envlen / 16777216) % 256
	out[nout++] = int(envlen / 65536) % 256
	out[nout++] = int(envlen / 256) % 256
	out[nout++] = envlen % 256
	out[nout++] = 8; out[nout++] = 1		# version 1
	out[nout++] = 16; out[nout++] = 1		# seq 1
	out[nout++] = 170; out[nout++] = 1		# field 21, length-delimited
	put_varint(maplen)
	out[nout++] = 8; put_varint(chunk)
	out[nout++] = 16; put_varint(n * chunk)
	for (i = 0; i < n; i++) {
		out[nout++] = 26; put_varint(sl[i])
		out[nout++] = 8; put_varint(i)
		out[nout++] = 18; put_str(prefix (base + i))
		out[nout++] = 24; out[nout++] = 1	# handle 1
	}
	for (i = 0; i < nout; i++)
		printf "\\%03o", out[i]
	printf "\n"
}
