/*
 * ipcs: the part of util-linux's `ipcs -m` that critest's HostIpc specs use
 * (Debian's busybox has no ipcs applet). Lists the System V shared memory
 * segments of the caller's IPC namespace from /proc/sysvipc/shm in
 * util-linux's column layout. With no segment it prints only the header,
 * which holds no digit, so "the segment id is absent" is a true statement.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	char line[512];
	FILE *f;

	if (argc > 1 && strcmp(argv[1], "-m") != 0) {
		fprintf(stderr, "ipcs: only -m is supported\n");
		return 1;
	}
	f = fopen("/proc/sysvipc/shm", "r");
	if (!f) {
		perror("ipcs: /proc/sysvipc/shm");
		return 1;
	}
	printf("\n------ Shared Memory Segments --------\n");
	printf("%-10s %-10s %-10s %-10s %-10s %-10s %-12s\n", "key", "shmid", "owner", "perms", "bytes",
	       "nattch", "status");
	if (!fgets(line, sizeof(line), f)) { /* header */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		long long key, size;
		unsigned long id, perms, uid, nattch;
		unsigned long cpid, lpid;
		/* key shmid perms size cpid lpid nattch uid ... */
		if (sscanf(line, "%lld %lu %lo %lld %lu %lu %lu %lu", &key, &id, &perms, &size, &cpid, &lpid,
			   &nattch, &uid) != 8)
			continue;
		printf("0x%08llx %-10lu %-10lu %-10lo %-10lld %-10lu\n", (unsigned long long)(unsigned int)key, id,
		       uid, perms & 0777, size, nattch);
	}
	fclose(f);
	return 0;
}
