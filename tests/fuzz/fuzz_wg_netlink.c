/*
 * fuzz_wg_netlink — WG_CMD_GET_DEVICE dump messages through
 * check_wg_nl_parse, as the netlink backend reads them. The input is a
 * run of messages, each prefixed by its length (2 bytes, little endian),
 * so nlmsg_len may disagree with what arrived. Every refusal says why;
 * peers merged across messages stay unique by key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Peers are keyed: no key twice, and the table stays within bounds. */
static void check_unique(const struct check_wg_device *dev)
{
	if (dev->n_peers > CHECK_WG_MAX_PEERS || dev->n_peers > dev->cap)
		abort();
	for (size_t i = 0; i < dev->n_peers; i++)
		for (size_t j = i + 1; j < dev->n_peers; j++)
			if (!memcmp(dev->peers[i].key, dev->peers[j].key, CHECK_WG_KEY_LEN))
				abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct check_wg_device dev = { 0 };
	char err[256];
	size_t off = 0;

	while (off + 2 <= size) {
		size_t len = data[off] | (size_t)data[off + 1] << 8;
		void *msg;
		int rc;

		off += 2;
		if (len > size - off)
			len = size - off;
		/* its own aligned buffer, as a received datagram, so ASan sees overreads */
		if (!(msg = malloc(len ? len : 1)))
			break;
		memcpy(msg, data + off, len);
		off += len;
		err[0] = '\0';
		rc = check_wg_nl_parse(msg, len, &dev, err, sizeof(err));
		free(msg);
		if (rc < 0 && !err[0])
			abort();
		if (rc < 0)
			break;   /* the backend stops the read at the first bad message */
	}
	check_unique(&dev);
	check_wg_device_clear(&dev);
	return 0;
}
