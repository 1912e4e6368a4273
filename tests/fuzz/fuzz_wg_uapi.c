/*
 * fuzz_wg_uapi — the WireGuard UAPI `get=1` reply parser on arbitrary
 * bytes. Every refusal says why; every accepted device is well formed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct check_wg_device dev = { 0 };
	char err[256];
	int rc;

	err[0] = '\0';
	rc = check_wg_uapi_parse((const char *)data, size, &dev, err, sizeof(err));
	if (rc < 0 && !err[0])
		abort();
	if (rc == 0) {
		if (dev.n_peers > CHECK_WG_MAX_PEERS || dev.n_peers > dev.cap)
			abort();
		/* peers are keyed: no key twice */
		for (size_t i = 0; i < dev.n_peers && i < 64; i++)
			for (size_t j = i + 1; j < dev.n_peers && j < 64; j++)
				if (!memcmp(dev.peers[i].key, dev.peers[j].key, CHECK_WG_KEY_LEN))
					abort();
	}
	check_wg_device_clear(&dev);
	return 0;
}
