/*
 * lg/html.c — the looking glass's page for people: plain HTML rendered
 * here, no JavaScript, no external resource. Every value that came from
 * BIRD or from a request goes through lg_html_escape; nothing else is
 * written but constant markup.
 */
#include <stdio.h>
#include <string.h>

#include "lg/lg.h"

/* Length of the valid UTF-8 sequence at s (1-4), 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
			return 0;   /* overlong, surrogate */
		return 3;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

void lg_html_escape(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n;

		switch (*p) {
		case '&': fputs("&amp;", f); p++; continue;
		case '<': fputs("&lt;", f); p++; continue;
		case '>': fputs("&gt;", f); p++; continue;
		case '"': fputs("&quot;", f); p++; continue;
		case '\'': fputs("&#39;", f); p++; continue;
		default: break;
		}
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
			fputs("\xef\xbf\xbd", f);
			p++;
			continue;
		}
		n = utf8_len(p);
		if (!n) {
			fputs("\xef\xbf\xbd", f);
			p++;
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
}

static void td(FILE *f, const char *s)
{
	fputs("<td>", f);
	lg_html_escape(f, s);
	fputs("</td>", f);
}

void lg_html_head(FILE *f, const char *node, const char *title)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>", f);
	lg_html_escape(f, node);
	fputs(" looking glass: ", f);
	lg_html_escape(f, title);
	fputs("</title>\n<style>\n"
	      "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
	      "table{border-collapse:collapse;margin:.5em 0 1.5em}\n"
	      "td,th{border:1px solid #bbb;padding:.2em .6em;text-align:left;font-family:monospace}\n"
	      "th{background:#eee}\n"
	      ".up{color:#070}.degraded{color:#a60}.draining{color:#a00}\n"
	      "nav a{margin-right:1em}\n"
	      "</style></head><body>\n<h1>", f);
	lg_html_escape(f, node);
	fputs(" &mdash; ", f);
	lg_html_escape(f, title);
	fputs("</h1>\n<nav><a href=\"/\">overview</a><a href=\"/fleet.html\">fleet</a>"
	      "<a href=\"/status\">status (JSON)</a><a href=\"/protocols/bgp\">BGP (JSON)</a>"
	      "<a href=\"/fleet\">fleet (JSON)</a></nav>\n", f);
}

void lg_html_foot(FILE *f)
{
	fputs("<p><small>" LG_VERSION ", read-only</small></p>\n</body></html>\n", f);
}

void lg_html_status(FILE *f, const struct lg_status *s)
{
	fputs("<h2>BIRD</h2>\n<table>\n", f);
	fputs("<tr><th>version</th>", f); td(f, s->version); fputs("</tr>\n", f);
	fputs("<tr><th>router id</th>", f); td(f, s->router_id); fputs("</tr>\n", f);
	fputs("<tr><th>server time</th>", f); td(f, s->server_time); fputs("</tr>\n", f);
	fputs("<tr><th>last reboot</th>", f); td(f, s->last_reboot); fputs("</tr>\n", f);
	fputs("<tr><th>last reconfiguration</th>", f); td(f, s->last_reconfig); fputs("</tr>\n", f);
	fputs("<tr><th>message</th>", f); td(f, s->message); fputs("</tr>\n</table>\n", f);
}

void lg_html_protocols(FILE *f, const struct lg_protocols *ps)
{
	fputs("<h2>Protocols</h2>\n<table>\n<tr><th>name</th><th>protocol</th><th>table</th>"
	      "<th>state</th><th>since</th><th>info</th></tr>\n", f);
	for (size_t i = 0; i < ps->n; i++) {
		const struct lg_protocol *p = &ps->items[i];

		fputs("<tr>", f);
		td(f, p->name); td(f, p->proto); td(f, p->table);
		td(f, p->state); td(f, p->since); td(f, p->info);
		fputs("</tr>\n", f);
	}
	fputs("</table>\n", f);
}

void lg_html_routes(FILE *f, const char *what, const struct lg_routes *rs)
{
	fputs("<h2>Routes: ", f);
	lg_html_escape(f, what);
	fprintf(f, " (%zu)</h2>\n", rs->n);
	fputs("<table>\n<tr><th>network</th><th>from</th><th>best</th><th>gateway</th>"
	      "<th>AS path</th><th>next hop</th><th>communities</th><th>originator</th>"
	      "<th>since</th></tr>\n", f);
	for (size_t i = 0; i < rs->n; i++) {
		const struct lg_route *r = &rs->items[i];
		char comm[LG_COMM_MAX * 40] = "";
		size_t o = 0;

		for (size_t j = 0; j < r->n_comm && o < sizeof(comm); j++)
			o += (size_t)snprintf(comm + o, sizeof(comm) - o, "%s%u:%u", o ? " " : "",
					      r->comm[j][0], r->comm[j][1]);
		for (size_t j = 0; j < r->n_large && o < sizeof(comm); j++)
			o += (size_t)snprintf(comm + o, sizeof(comm) - o, "%s%u:%u:%u", o ? " " : "",
					      r->large[j][0], r->large[j][1], r->large[j][2]);
		fputs("<tr>", f);
		td(f, r->network); td(f, r->from_protocol); td(f, r->primary ? "*" : "");
		td(f, r->gateway[0] ? r->gateway : r->type); td(f, r->as_path); td(f, r->next_hop);
		td(f, comm); td(f, r->originator_id); td(f, r->age);
		fputs("</tr>\n", f);
	}
	fputs("</table>\n", f);
}

void lg_html_fleet(FILE *f, const struct lg_fleet *fl)
{
	fputs("<h2>Fleet: who announces what</h2>\n<table>\n<tr><th>service</th><th>node</th>"
	      "<th>state</th><th>prefix</th><th>via</th><th>how</th></tr>\n", f);
	for (size_t i = 0; i < fl->n; i++) {
		const struct lg_fleet_row *r = &fl->rows[i];
		const char *st = lg_fleet_state_str(r->state);

		fputs("<tr>", f);
		td(f, r->service); td(f, r->node);
		fprintf(f, "<td class=\"%s\">%s</td>", st, st);   /* a constant word */
		td(f, r->prefix); td(f, r->via); td(f, r->how);
		fputs("</tr>\n", f);
	}
	fputs("</table>\n", f);
}

void lg_html_form(FILE *f, const char *net)
{
	fputs("<h2>Route lookup</h2>\n<form method=\"get\" action=\"/route\">"
	      "<label>address or prefix <input name=\"net\" size=\"40\" value=\"", f);
	lg_html_escape(f, net ? net : "");
	fputs("\"></label> <button type=\"submit\">show route</button></form>\n", f);
}

void lg_html_error(FILE *f, const char *msg)
{
	fputs("<p><strong>error:</strong> ", f);
	lg_html_escape(f, msg);
	fputs("</p>\n", f);
}
