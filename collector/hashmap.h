/* SPDX-License-Identifier: MIT */
/* Open-addressing map from u64 keys to fixed-size values, with
 * backward-shift deletion (no tombstones: the live table churns). Key 0
 * is stored as ~0 (keys[] shows it so): they are one key. */
#ifndef PP_HASHMAP_H
#define PP_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

struct pp_map {
	uint64_t *keys;
	uint8_t *vals;
	size_t val_size;
	size_t mask;
	size_t count;
};

int pp_map_init(struct pp_map *m, size_t val_size);
void pp_map_free(struct pp_map *m);
/* value of key, or NULL */
void *pp_map_get(const struct pp_map *m, uint64_t key);
/* value slot of key, created zeroed if absent (*fresh = 1) */
void *pp_map_put(struct pp_map *m, uint64_t key, int *fresh);
/* remove key, copying its value to out (if not NULL); 1 if it was there */
int pp_map_del(struct pp_map *m, uint64_t key, void *out);

/*
 * The common case of a u32 value: the slot of key, created holding init
 * when absent (create), else NULL. Any key may be used (0 included), and
 * a zeroed struct pp_map is a valid empty map.
 */
uint32_t *pp_map_u32(struct pp_map *m, uint64_t key, int create,
		     uint32_t init);

#define pp_map_for_each(m, i) \
	for ((i) = 0; (i) <= (m)->mask; (i)++) if ((m)->keys[i])
#define pp_map_val(m, i) ((void *)((m)->vals + (i) * (m)->val_size))

#endif
