// SPDX-License-Identifier: GPL-2.0
/*
 * The cluster key and the handshake MACs (proto/rswap_auth.h has the
 * protocol and the byte layout; proto/auth.c is the userspace twin and
 * tests/unit/test_auth.c pins the layout with independent vectors).
 *
 * The key reaches the module through the kernel keyring, never through a
 * parameter: rswapctl adds a "user" key named "rswap:cluster" (64 hex
 * digits or 32 raw bytes) to its session keyring before insmod, and the
 * module copies it at load, so it shows in no sysfs file, /proc, modinfo
 * or log line.  The copy is wiped at unload.
 *
 * Everything here sleeps (key lookup, crypto allocation).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/hash.h>
#include <keys/user-type.h>
#include <linux/err.h>
#include <linux/key.h>
#include <linux/string.h>

#include "rswap-clt.h"
#include "rswap_auth.h"

static int rswap_hexval(u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 32 raw bytes, or 64 hex digits and an optional newline. */
static int rswap_key_decode(const u8 *p, unsigned int len, u8 *key)
{
	unsigned int i;

	if (len == RSWAP_KEY_LEN) {
		memcpy(key, p, RSWAP_KEY_LEN);
		return 0;
	}
	if (len == RSWAP_KEY_HEX_LEN + 1 && p[RSWAP_KEY_HEX_LEN] == '\n')
		len--;
	if (len != RSWAP_KEY_HEX_LEN)
		return -EINVAL;
	for (i = 0; i < RSWAP_KEY_LEN; i++) {
		int hi = rswap_hexval(p[2 * i]), lo = rswap_hexval(p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		key[i] = hi << 4 | lo;
	}
	return 0;
}

/*
 * Sleeps.  Copy the key "rswap:cluster" from the caller's keyrings into
 * auth->key.  0 (auth->have_key set), -ENOKEY when there is none (the
 * module then does no handshake), or another -errno after one log line.
 */
int rswap_auth_load_key(struct rswap_auth *auth)
{
	const struct user_key_payload *up;
	struct key *k;
	int ret;

	k = request_key(&key_type_user, RSWAP_KEYRING_DESC, NULL);
	if (IS_ERR(k))
		return PTR_ERR(k) == -ENOKEY || PTR_ERR(k) == -EKEYREVOKED ||
		       PTR_ERR(k) == -EKEYEXPIRED ? -ENOKEY : PTR_ERR(k);
	down_read(&k->sem);
	up = user_key_payload_locked(k);
	ret = up ? rswap_key_decode(up->data, up->datalen, auth->key) : -ENOKEY;
	up_read(&k->sem);
	key_put(k);
	if (ret == -EINVAL) {
		pr_err("key %s must hold 64 hex digits (rswap-admin keygen) or 32 bytes\n",
		       RSWAP_KEYRING_DESC);
		return ret;
	}
	if (ret)
		return ret;
	auth->tfm = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(auth->tfm)) {
		ret = PTR_ERR(auth->tfm);
		auth->tfm = NULL;
		pr_err("cannot get hmac(sha256) from the crypto API: %pe (is CONFIG_CRYPTO_HMAC built?)\n",
		       ERR_PTR(ret));
		goto out_wipe;
	}
	ret = crypto_shash_setkey(auth->tfm, auth->key, RSWAP_KEY_LEN);
	if (ret) {
		pr_err("cannot set the hmac(sha256) key: %pe\n", ERR_PTR(ret));
		goto out_free_tfm;
	}
	auth->have_key = true;
	return 0;

out_free_tfm:
	crypto_free_shash(auth->tfm);
	auth->tfm = NULL;
out_wipe:
	memzero_explicit(auth->key, sizeof(auth->key));
	return ret;
}

void rswap_auth_free(struct rswap_auth *auth)
{
	if (auth->tfm)
		crypto_free_shash(auth->tfm);
	auth->tfm = NULL;
	auth->have_key = false;
	memzero_explicit(auth->key, sizeof(auth->key));
}

/* Sleeps (the shash may).  mac = MAC(label, a, b), rswap_auth.h's layout. */
int rswap_auth_mac(const struct rswap_auth *auth, const char *label, u8 role,
		   const void *id, size_t id_len, const u8 *a, const u8 *b,
		   u8 *mac)
{
	u8 msg[RSWAP_AUTH_MSG_MAX];
	size_t n;
	int ret;

	if (!auth->have_key || id_len > RSWAP_AUTH_ID_MAX ||
	    strlen(label) != RSWAP_AUTH_LABEL_LEN)
		return -EINVAL;
	memcpy(msg, label, RSWAP_AUTH_LABEL_LEN);
	n = RSWAP_AUTH_LABEL_LEN;
	msg[n++] = role;
	msg[n++] = id_len;
	memcpy(msg + n, id, id_len);
	n += id_len;
	memcpy(msg + n, a, RSWAP_NONCE_LEN);
	n += RSWAP_NONCE_LEN;
	memcpy(msg + n, b, RSWAP_NONCE_LEN);
	n += RSWAP_NONCE_LEN;
	ret = crypto_shash_tfm_digest(auth->tfm, msg, n, mac);
	memzero_explicit(msg, sizeof(msg));
	return ret;
}

/* Does mac (mac_len bytes) equal MAC(label, a, b)?  Constant time. */
bool rswap_auth_check(const struct rswap_auth *auth, const char *label, u8 role,
		      const void *id, size_t id_len, const u8 *a, const u8 *b,
		      const u8 *mac, size_t mac_len)
{
	u8 want[RSWAP_MAC_LEN], diff = 0;
	unsigned int i;

	if (!mac || mac_len != RSWAP_MAC_LEN ||
	    rswap_auth_mac(auth, label, role, id, id_len, a, b, want))
		return false;
	for (i = 0; i < RSWAP_MAC_LEN; i++)
		diff |= want[i] ^ mac[i];
	memzero_explicit(want, sizeof(want));
	return !diff;
}
