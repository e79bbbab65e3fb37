/*
 * pause: the infra process of a test pod sandbox (registry.k8s.io/pause:3.9
 * in the local test registry). Sleeps until SIGTERM or SIGINT, reaps every
 * child re-parented to it (it is PID 1 of the pod), exits 0 on those signals.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_chld(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(int argc, char **argv)
{
	struct sigaction term = {.sa_handler = on_term};
	struct sigaction chld = {.sa_handler = on_chld, .sa_flags = SA_NOCLDSTOP};

	if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v') {
		printf("pause (cri-runtime test image)\n");
		return 0;
	}
	if (sigaction(SIGINT, &term, NULL) < 0 || sigaction(SIGTERM, &term, NULL) < 0 ||
	    sigaction(SIGCHLD, &chld, NULL) < 0) {
		perror("sigaction");
		return 1;
	}
	for (;;)
		pause();
}
