/*
 * mesh/fleet.c — `meshctl fleet --lg URL [--json]`: the fleet view of a
 * node's looking glass (meshlg's /fleet), as a table or as the JSON it is.
 * From the route reflector it is every node's announcement.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh.h"

#define FLEET_MAX (1u << 20)

struct body {
	char *data;
	size_t len;
	bool over;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = size * n;
	char *d;

	if (b->len + add > FLEET_MAX) {
		b->over = true;
		return 0;
	}
	if (!(d = realloc(b->data, b->len + add + 1)))
		return 0;
	memcpy(d + b->len, p, add);
	b->data = d;
	b->len += add;
	d[b->len] = '\0';
	return add;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static void table(json_t *j)
{
	json_t *svc, *a;
	size_t i, k, n = 0;

	printf("%-12s %-12s %-10s %-22s %-18s %s\n", "SERVICE", "NODE", "STATE", "PREFIX", "VIA", "HOW");
	json_array_foreach(json_object_get(j, "services"), i, svc)
		json_array_foreach(json_object_get(svc, "announcers"), k, a) {
			printf("%-12s %-12s %-10s %-22s %-18s %s\n", str(svc, "name"), str(a, "node"),
			       str(a, "state"), str(a, "prefix"), str(a, "via"), str(a, "how"));
			n++;
		}
	printf("# %zu announcements, seen from %s\n", n, str(j, "node"));
}

int mesh_fleet_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lg", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *lg = NULL;
	bool json = false;
	struct body b = { 0 };
	char url[1024], cerr[CURL_ERROR_SIZE] = "";
	long code = 0;
	json_error_t e;
	json_t *j;
	CURL *c;
	CURLcode rc;
	int o;

	optind = 2;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'l': lg = optarg; break;
		case 'j': json = true; break;
		case 'h': printf("usage: meshctl fleet --lg URL [--json]\n"); return 0;
		default: fprintf(stderr, "usage: meshctl fleet --lg URL [--json]\n"); return 2;
		}
	}
	if (!lg || optind != argc || (strncmp(lg, "http://", 7) && strncmp(lg, "https://", 8))) {
		fprintf(stderr, "usage: meshctl fleet --lg URL [--json]   (URL: http://NODE:8080)\n");
		return 2;
	}
	snprintf(url, sizeof(url), "%.*s/fleet", (int)strcspn(lg, "?#") -
		 (lg[strcspn(lg, "?#") - 1] == '/'), lg);
	if (!(c = curl_easy_init())) {
		fprintf(stderr, "meshctl: out of memory\n");
		return 1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "meshctl: %s: %s\n", url, b.over ? "reply over 1 MiB" : cerr[0] ? cerr :
			curl_easy_strerror(rc));
		free(b.data);
		return 1;
	}
	j = b.data ? json_loadb(b.data, b.len, 0, &e) : NULL;
	if (code != 200 || !j) {
		fprintf(stderr, "meshctl: %s: HTTP %ld: %s\n", url, code,
			j ? str(j, "error") : "not JSON");
		json_decref(j);
		free(b.data);
		return 1;
	}
	if (json)
		fwrite(b.data, 1, b.len, stdout);
	else
		table(j);
	json_decref(j);
	free(b.data);
	return 0;
}
