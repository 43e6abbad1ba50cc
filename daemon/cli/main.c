/* main.c: subcommand dispatch only; every command lives in a module the tests link directly. */
#include <stdio.h>
#include <locale.h>
#include <stdlib.h>
#include <sys/random.h>
#include <curl/curl.h>
#include "daemon/cli/cli.h"

static void usage(FILE *f) {
        fprintf(f,
                "Usage: pullwatch COMMAND [OPTIONS]\n"
                "\n"
                "Drive and watch container image pulls; tell a silent-but-working phase from a hang.\n"
                "\n"
                "Commands:\n"
                "  pull [--runtime auto|docker|containerd] [--docker-socket P] [--containerd-socket P]\n"
                "       [--namespace NS] [--platform OS/ARCH] [--config F] [--json] IMAGE\n"
                "                      one watched pull in the foreground\n"
                "                      (through the daemon when its control socket answers)\n"
                "  watch [--runtime containerd] [--containerd-socket P] [--config F] [--json]\n"
                "                      observe every pull in containerd's namespace (kubelet's too),\n"
                "                      report stalls and hangs, cancel nothing\n"
                "  daemon [--config F] preheat the list, watch pulls, alert to journald (systemd service)\n"
                "  status [--json] [--config F]\n"
                "                      the daemon's preheat list, pulls in flight and runtimes\n"
                "  check-config [--config F]\n"
                "                      validate the config and print the effective settings\n"
                "  --help, --version\n"
                "\n"
                "Exit status: 0 success, 1 pull failed, 2 usage or config error.\n");
}

int main(int argc, char **argv) {
        int r;

        setlocale(LC_ALL, "C");
        /* Backoff jitter must differ between the nodes of a fleet, or their retries stay in step. */
        unsigned seed;
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
                seed = (unsigned) getpid() ^ (unsigned) now_monotonic();
        srandom(seed);
        if (argc < 2) {
                usage(stderr);
                return EXIT_USAGE;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (streq(argv[1], "--version")) {
                printf("pullwatch %s\n", PULLWATCH_VERSION);
                return 0;
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "pullwatch: libcurl failed to initialise\n");
                return EXIT_PULL_FAILED;
        }
        if (streq(argv[1], "pull"))
                r = cli_pull(argc - 1, argv + 1);
        else if (streq(argv[1], "daemon"))
                r = cli_daemon(argc - 1, argv + 1);
        else if (streq(argv[1], "watch"))
                r = cli_watch(argc - 1, argv + 1);
        else if (streq(argv[1], "status"))
                r = cli_status(argc - 1, argv + 1);
        else if (streq(argv[1], "check-config"))
                r = cli_check_config(argc - 1, argv + 1);
        else {
                fprintf(stderr, "pullwatch: unknown command '%s'\n\n", argv[1]);
                usage(stderr);
                r = EXIT_USAGE;
        }
        curl_global_cleanup();
        return r;
}
