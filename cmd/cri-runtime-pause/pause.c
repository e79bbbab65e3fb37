/*
 * cri-runtime-pause: the process that holds a pod sandbox's namespaces.
 * It sleeps, reaps the children re-parented to it (as PID 1 of a shared pid
 * namespace), and exits 0 on SIGTERM or SIGINT. Built static and tiny
 * (see the Makefile), so a pod starts with no image pull.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) { (void)sig; _exit(0); }

static void on_child(int sig) {
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		static const char v[] = "cri-runtime-pause\n";
		return write(1, v, sizeof v - 1) < 0;
	}
	struct sigaction stop = {.sa_handler = on_stop};
	struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
	if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
	    sigaction(SIGCHLD, &child, NULL) < 0)
		return 1;
	for (;;)
		pause();
}
