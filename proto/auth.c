// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "auth.h"
#include "rswap_frame.h"
#include "rswap_wire.h"
#include "rswap.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int rswap_key_load(const char *path, uint8_t key[RSWAP_KEY_LEN], char *why,
		   size_t whylen)
{
	char buf[RSWAP_KEY_HEX_LEN + 3];
	struct stat st;
	ssize_t n;
	int fd, i, err;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		err = errno;
		snprintf(why, whylen, "cannot open key file %s: %s%s", path, strerror(err),
			 err == ENOENT ? " (rswap-admin keygen > FILE makes one)" : "");
		return -err;
	}
	if (fstat(fd, &st)) {
		err = errno;
		close(fd);
		snprintf(why, whylen, "cannot stat key file %s: %s", path, strerror(err));
		return -err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, whylen, "key file %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		snprintf(why, whylen, "key file %s is readable by others (mode %03o): chmod 600 %s",
			 path, (unsigned int)(st.st_mode & 0777), path);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf));
	err = errno;
	close(fd);
	if (n < 0) {
		snprintf(why, whylen, "cannot read key file %s: %s", path, strerror(err));
		return -err;
	}
	if (n > RSWAP_KEY_HEX_LEN && buf[RSWAP_KEY_HEX_LEN] == '\n')
		n--;
	if (n != RSWAP_KEY_HEX_LEN)
		goto bad;
	for (i = 0; i < RSWAP_KEY_LEN; i++) {
		int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);

		if (hi < 0 || lo < 0)
			goto bad;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
bad:
	OPENSSL_cleanse(buf, sizeof(buf));
	snprintf(why, whylen, "key file %s must hold %d hex digits on one line (rswap-admin keygen makes one)",
		 path, RSWAP_KEY_HEX_LEN);
	return -EINVAL;
}

int rswap_auth_nonce(uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

int rswap_key_generate(char hex[RSWAP_KEY_HEX_LEN + 2])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t key[RSWAP_KEY_LEN];
	int i, ret;

	ret = rswap_auth_nonce(key, sizeof(key));
	if (ret)
		return ret;
	for (i = 0; i < RSWAP_KEY_LEN; i++) {
		hex[2 * i] = digits[key[i] >> 4];
		hex[2 * i + 1] = digits[key[i] & 15];
	}
	hex[RSWAP_KEY_HEX_LEN] = '\n';
	hex[RSWAP_KEY_HEX_LEN + 1] = '\0';
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}

size_t rswap_auth_rdma_id(uint8_t *out, const char *client_id, uint64_t cookie)
{
	size_t n = strnlen(client_id, RSWAP_CLIENT_ID_LEN);
	unsigned int i;

	memcpy(out, client_id, n);
	for (i = 0; i < 8; i++)
		out[n + i] = (uint8_t)(cookie >> (8 * i));
	return n + 8;
}

int rswap_auth_mac(const uint8_t key[RSWAP_KEY_LEN], const char *label,
		   enum rswap_auth_role role, const void *id, size_t id_len,
		   const uint8_t a[RSWAP_NONCE_LEN],
		   const uint8_t b[RSWAP_NONCE_LEN],
		   uint8_t mac[RSWAP_MAC_LEN])
{
	uint8_t msg[RSWAP_AUTH_MSG_MAX];
	unsigned int maclen = RSWAP_MAC_LEN;
	size_t n = 0;

	if (id_len > RSWAP_AUTH_ID_MAX || strlen(label) != RSWAP_AUTH_LABEL_LEN)
		return -EINVAL;
	memcpy(msg, label, RSWAP_AUTH_LABEL_LEN);
	n = RSWAP_AUTH_LABEL_LEN;
	msg[n++] = (uint8_t)role;
	msg[n++] = (uint8_t)id_len;
	memcpy(msg + n, id, id_len);
	n += id_len;
	memcpy(msg + n, a, RSWAP_NONCE_LEN);
	n += RSWAP_NONCE_LEN;
	memcpy(msg + n, b, RSWAP_NONCE_LEN);
	n += RSWAP_NONCE_LEN;
	if (!HMAC(EVP_sha256(), key, RSWAP_KEY_LEN, msg, n, mac, &maclen) ||
	    maclen != RSWAP_MAC_LEN)
		return -EIO;
	return 0;
}

bool rswap_auth_check(const uint8_t key[RSWAP_KEY_LEN], const char *label,
		      enum rswap_auth_role role, const void *id, size_t id_len,
		      const uint8_t a[RSWAP_NONCE_LEN],
		      const uint8_t b[RSWAP_NONCE_LEN],
		      const uint8_t *mac, size_t mac_len)
{
	uint8_t want[RSWAP_MAC_LEN];
	bool ok;

	if (!mac || mac_len != RSWAP_MAC_LEN ||
	    rswap_auth_mac(key, label, role, id, id_len, a, b, want))
		return false;
	ok = !CRYPTO_memcmp(want, mac, RSWAP_MAC_LEN);
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

int rswap_auth_handshake_fd(int fd, const uint8_t *key, enum rswap_auth_role role,
			    const char *id, char *why, size_t whylen)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT, *rep = NULL;
	Rswap__AuthHello hello = RSWAP__AUTH_HELLO__INIT;
	Rswap__AuthProof proof = RSWAP__AUTH_PROOF__INIT;
	uint8_t nonce[RSWAP_NONCE_LEN], mac[RSWAP_MAC_LEN];
	const Rswap__AuthChallenge *ch;
	const char *rwhy = NULL;
	int ret;

	if (!key)
		return 0;
	ret = rswap_auth_nonce(nonce, sizeof(nonce));
	if (ret) {
		snprintf(why, whylen, "no random bytes: %s", strerror(-ret));
		return ret;
	}
	hello.role = (Rswap__PeerRole)role;
	hello.id = (char *)id;
	hello.nonce.data = nonce;
	hello.nonce.len = sizeof(nonce);
	env.version = RSWAP_PROTO_VERSION;
	env.seq = 1;
	env.body_case = RSWAP__ENVELOPE__BODY_AUTH_HELLO;
	env.auth_hello = &hello;
	ret = rswap_frame_send_fd(fd, &env);
	if (ret) {
		snprintf(why, whylen, "cannot send: %s", ret == -EAGAIN ? "timed out" : strerror(-ret));
		return ret;
	}
	ret = rswap_frame_recv_fd(fd, &rep, &rwhy);
	if (ret) {
		snprintf(why, whylen, "no answer to the authentication: %s",
			 ret == -EAGAIN || ret == -EWOULDBLOCK ? "timed out" :
			 rwhy ? rwhy : strerror(-ret));
		return ret;
	}
	if (rep->body_case == RSWAP__ENVELOPE__BODY_ERROR) {
		snprintf(why, whylen, "refused the authentication: %.200s",
			 rep->error->reason ? rep->error->reason : "");
		ret = rep->error->code > 0 ? -rep->error->code : -EACCES;
		goto out;
	}
	if (rep->body_case != RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE) {
		snprintf(why, whylen, "answered the authentication with message %d",
			 (int)rep->body_case);
		ret = -EPROTO;
		goto out;
	}
	ch = rep->auth_challenge;
	if (ch->insecure) {
		snprintf(why, whylen,
			 "runs without a cluster key (--insecure) but this side has one: refusing to trust it");
		ret = -EACCES;
		goto out;
	}
	if (ch->nonce.len != RSWAP_NONCE_LEN ||
	    !rswap_auth_check(key, RSWAP_AUTH_LABEL_R, role, id, strlen(id), nonce,
			      ch->nonce.data, ch->mac.data, ch->mac.len)) {
		snprintf(why, whylen, "failed to prove the cluster key (wrong key here or there?)");
		ret = -EACCES;
		goto out;
	}
	ret = rswap_auth_mac(key, RSWAP_AUTH_LABEL_I, role, id, strlen(id), ch->nonce.data,
			     nonce, mac);
	if (ret) {
		snprintf(why, whylen, "cannot compute the proof");
		goto out;
	}
	proof.mac.data = mac;
	proof.mac.len = sizeof(mac);
	env.seq = 2;
	env.body_case = RSWAP__ENVELOPE__BODY_AUTH_PROOF;
	env.auth_proof = &proof;
	ret = rswap_frame_send_fd(fd, &env);
	if (ret)
		snprintf(why, whylen, "cannot send: %s", ret == -EAGAIN ? "timed out" : strerror(-ret));
out:
	rswap__envelope__free_unpacked(rep, NULL);
	return ret;
}
