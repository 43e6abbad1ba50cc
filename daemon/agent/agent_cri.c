/* agent_cri.c: the daemon's CRI image service for kubelet: its socket (handed over by systemd's
 * pullwatch-cri.socket, else bound at cri.listen) and its pulls' events to the agent's reporting. */
#include "daemon/agent/agent_internal.h"
#include "basic/unix_socket.h"

#include <fcntl.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>

static void on_cri_event(PullJob *j, const PullEvent *e, void *userdata) {
        agent_observe_pull_event(userdata, e);
}

/* The socket systemd passed as "cri" (FileDescriptorName=cri), or -ENOENT. Other passed fds are not
 * ours to touch. */
static int activated_fd(void) {
        char **names = NULL;
        int n = sd_listen_fds_with_names(false, &names), fd = -ENOENT;

        for (int i = 0; i < n; i++) {
                if (fd < 0 && names && streq_ptr(names[i], "cri") &&
                    sd_is_socket_unix(SD_LISTEN_FDS_START + i, SOCK_STREAM, 1, NULL, 0) > 0)
                        fd = SD_LISTEN_FDS_START + i;
                free(names ? names[i] : NULL);
        }
        free(names);
        if (fd >= 0) {
                int fl = fcntl(fd, F_GETFL);
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                if (fl >= 0)
                        (void) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        }
        return fd;
}

int agent_cri_start(Agent *a) {
        const Config *c = a->config->config;
        const char *where = "socket activation";
        int fd, r;

        fd = activated_fd();
        if (fd < 0) {
                if (!c->cri_listen)
                        return 0; /* off */
                where = c->cri_listen;
                r = unix_socket_listen(c->cri_listen, 0600, &fd);
                if (r < 0) {
                        log_line(LOG_ERR, "CRI image service %s: %s; serving none (kubelet pointed there cannot pull)",
                                 c->cri_listen, r == -EADDRINUSE ? "something else answers there" : strerror(-r));
                        return r;
                }
        }
        r = cri_service_new(a->event, a->glue, a->config, a->drivers[RUNTIME_CONTAINERD], fd, on_cri_event, a, &a->cri);
        if (r < 0) {
                close(fd);
                log_line(LOG_ERR, "CRI image service: %s", strerror(-r));
                return r;
        }
        log_line(LOG_INFO, "CRI image service on %s (kubelet's imageServiceEndpoint), pulling through %s",
                 where, c->containerd_socket);
        return 0;
}

void agent_cri_stop(Agent *a) {
        a->cri = cri_service_free(a->cri);
}

void agent_cri_reload(Agent *a) {
        if (a->cri)
                cri_service_set_config(a->cri, a->config);
}
