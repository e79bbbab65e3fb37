/*
 * pgrep: the part of procps' pgrep that critest uses (`pgrep sleep`):
 * prints the pid of every process whose name (/proc/<pid>/comm) matches the
 * extended regular expression, one per line; exits 1 when none matches.
 * Debian's busybox has no pgrep applet. Its own pid is never listed.
 */
#include <ctype.h>
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	regex_t re;
	DIR *d;
	struct dirent *e;
	int found = 0;
	long self = (long)getpid();

	if (argc != 2) {
		fprintf(stderr, "usage: pgrep PATTERN\n");
		return 2;
	}
	if (regcomp(&re, argv[1], REG_EXTENDED | REG_NOSUB) != 0) {
		fprintf(stderr, "pgrep: bad pattern %s\n", argv[1]);
		return 2;
	}
	d = opendir("/proc");
	if (!d) {
		perror("pgrep: /proc");
		return 3;
	}
	while ((e = readdir(d))) {
		char path[300], comm[64];
		FILE *f;
		size_t n;

		if (!isdigit((unsigned char)e->d_name[0]) || atol(e->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		n = fread(comm, 1, sizeof(comm) - 1, f);
		fclose(f);
		comm[n] = 0;
		if (n && comm[n - 1] == '\n')
			comm[n - 1] = 0;
		if (regexec(&re, comm, 0, NULL, 0) == 0) {
			printf("%s\n", e->d_name);
			found = 1;
		}
	}
	closedir(d);
	return found ? 0 : 1;
}
