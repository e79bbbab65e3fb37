/*
 * webserver: the tiny HTTP server behind the nginx, hostnet-nginx and httpd
 * test images. critest needs from those images only: an HTTP 200 on a port,
 * a process named nginx (comm) whose command line reads like nginx's master
 * ("nginx: master process nginx -g daemon off;"), its pid in
 * /var/run/nginx.pid, and the server's name in the container log. Configured
 * by the image's environment:
 *   WEB_PORT     port to listen on (default 80), all addresses, v6 and v4
 *   WEB_NAME     name printed in the log and page (default: the file name)
 *   WEB_PIDFILE  file to write the pid into once listening (optional)
 *   WEB_TITLE    command line to show: the program re-executes itself with
 *                this single argv[0], as nginx's setproctitle does (optional)
 * Exits 0 on SIGTERM, SIGINT or SIGQUIT.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static int listen_on(int port)
{
	int one = 1, zero = 0, fd;
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};

	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, (struct sockaddr *)&a6, sizeof(a6)) == 0 && listen(fd, 64) == 0)
			return fd;
		close(fd);
	}
	/* No IPv6 in this network namespace: IPv4 only. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) < 0 || listen(fd, 64) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void serve(int c, const char *name)
{
	char req[4096], resp[512], body[160];
	size_t n = 0;
	struct timeval tv = {.tv_sec = 5};

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (n < sizeof(req) - 1) {
		ssize_t r = read(c, req + n, sizeof(req) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		req[n] = 0;
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[n] = 0;
	req[strcspn(req, "\r\n")] = 0;
	snprintf(body, sizeof(body), "<html><body><h1>Welcome to %.32s!</h1></body></html>\n", name);
	snprintf(resp, sizeof(resp),
		 "HTTP/1.1 200 OK\r\nServer: %.32s\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s",
		 name, strlen(body), body);
	if (write(c, resp, strlen(resp)) < 0) {
		/* the client went away: nothing to do */
	}
	printf("%s: \"%s\" 200\n", name, req);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *port_s = getenv("WEB_PORT"), *name = getenv("WEB_NAME");
	const char *pidfile = getenv("WEB_PIDFILE"), *title = getenv("WEB_TITLE");
	struct sigaction term = {.sa_handler = on_term};
	int port = port_s ? atoi(port_s) : 80, fd;

	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	(void)argc;
	self[n > 0 ? n : 0] = 0;
	if (title && *title && strcmp(argv[0], title) != 0) {
		char *args[] = {(char *)title, NULL};

		if (n > 0)
			execv(self, args);
		fprintf(stderr, "webserver: re-exec as %s: %s\n", title, strerror(errno));
	}
	if (!name || !*name) {
		const char *base = n > 0 ? self : argv[0];
		name = strrchr(base, '/') ? strrchr(base, '/') + 1 : base;
	}
	sigaction(SIGTERM, &term, NULL);
	sigaction(SIGINT, &term, NULL);
	sigaction(SIGQUIT, &term, NULL);
	signal(SIGPIPE, SIG_IGN);

	fd = listen_on(port);
	if (fd < 0) {
		fprintf(stderr, "%s: listen on port %d: %s\n", name, port, strerror(errno));
		return 1;
	}
	if (pidfile && *pidfile) {
		FILE *f = fopen(pidfile, "w");
		if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
			fprintf(stderr, "%s: write %s: %s\n", name, pidfile, strerror(errno));
			return 1;
		}
	}
	fprintf(stderr, "%s: listening on port %d, pid %d\n", name, port, (int)getpid());
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: accept: %s\n", name, strerror(errno));
			return 1;
		}
		serve(c, name);
		close(c);
	}
}
