/* The pod sandbox's process: holds the pod's namespaces, reaps orphans, exits on
   SIGINT/SIGTERM. The same job as Kubernetes' build/pause/linux/pause.c, built here
   with `gcc -static` by `triptych kube up` (no registry is reachable for theirs). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_exit_signal(int sig) { _exit(0); }

static void reap(int sig) {
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction exit_action = {.sa_handler = on_exit_signal};
  struct sigaction reap_action = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  sigaction(SIGINT, &exit_action, NULL);
  sigaction(SIGTERM, &exit_action, NULL);
  sigaction(SIGCHLD, &reap_action, NULL);
  for (;;) pause();
  return 1;
}
