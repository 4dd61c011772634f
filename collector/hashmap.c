// SPDX-License-Identifier: MIT
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hashmap.h"

/*
 * Key 0 marks an empty slot, so it is kept as ~0 (the two are one key):
 * a hostile trace's block at address 0 must not find an empty slot's
 * uninitialised value (found by tests/fuzz/fuzz_trace.c).
 */
static inline uint64_t real_key(uint64_t key)
{
	return key ? key : ~0ull;
}

static inline size_t slot_of(const struct pp_map *m, uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 29;
	return key & m->mask;
}

static void alloc_slots(struct pp_map *m, size_t n)
{
	m->keys = pp_xcalloc(n, sizeof(*m->keys));
	m->vals = pp_xmalloc(n * m->val_size);
	m->mask = n - 1;
}

int pp_map_init(struct pp_map *m, size_t val_size)
{
	memset(m, 0, sizeof(*m));
	m->val_size = val_size;
	alloc_slots(m, 1024);
	return 0;
}

void pp_map_free(struct pp_map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

void *pp_map_get(const struct pp_map *m, uint64_t key)
{
	size_t i;

	key = real_key(key);
	i = slot_of(m, key);

	for (;; i = (i + 1) & m->mask) {
		if (m->keys[i] == key)
			return m->vals + i * m->val_size;
		if (!m->keys[i])
			return NULL;
	}
}

static void grow(struct pp_map *m)
{
	struct pp_map old = *m;
	size_t i;

	alloc_slots(m, (old.mask + 1) * 2);
	for (i = 0; i <= old.mask; i++) {
		size_t j;

		if (!old.keys[i])
			continue;
		for (j = slot_of(m, old.keys[i]); m->keys[j];
		     j = (j + 1) & m->mask)
			;
		m->keys[j] = old.keys[i];
		memcpy(m->vals + j * m->val_size, old.vals + i * m->val_size,
		       m->val_size);
	}
	free(old.keys);
	free(old.vals);
}

void *pp_map_put(struct pp_map *m, uint64_t key, int *fresh)
{
	size_t i;

	key = real_key(key);
	if ((m->count + 1) * 2 > m->mask + 1)
		grow(m);
	for (i = slot_of(m, key);; i = (i + 1) & m->mask) {
		if (m->keys[i] == key) {
			*fresh = 0;
			return m->vals + i * m->val_size;
		}
		if (!m->keys[i])
			break;
	}
	m->keys[i] = key;
	memset(m->vals + i * m->val_size, 0, m->val_size);
	m->count++;
	*fresh = 1;
	return m->vals + i * m->val_size;
}

uint32_t *pp_map_u32(struct pp_map *m, uint64_t key, int create,
		     uint32_t init)
{
	uint32_t *v;
	int fresh;

	if (!m->keys) {
		if (!create || pp_map_init(m, sizeof(uint32_t)) < 0)
			return NULL;
	}
	if (!create)
		return pp_map_get(m, key);
	v = pp_map_put(m, key, &fresh);
	if (v && fresh)
		*v = init;
	return v;
}

int pp_map_del(struct pp_map *m, uint64_t key, void *out)
{
	size_t i, j;

	key = real_key(key);
	i = slot_of(m, key);

	for (;; i = (i + 1) & m->mask) {
		if (!m->keys[i])
			return 0;
		if (m->keys[i] == key)
			break;
	}
	if (out)
		memcpy(out, m->vals + i * m->val_size, m->val_size);
	/* shift later members of the cluster back into the hole */
	for (j = (i + 1) & m->mask; m->keys[j]; j = (j + 1) & m->mask) {
		size_t home = slot_of(m, m->keys[j]);

		if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
			m->keys[i] = m->keys[j];
			memcpy(m->vals + i * m->val_size,
			       m->vals + j * m->val_size, m->val_size);
			i = j;
		}
	}
	m->keys[i] = 0;
	m->count--;
	return 1;
}
