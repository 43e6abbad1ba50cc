/* docker_store.c: see docker_store.h. The fields are moby's /info: DriverStatus is a list of
 * [key, value] pairs; Containerd appeared in API 1.46 (Docker 27). */
#include "probes/docker/docker_store.h"

static int dup_string(json_t *o, const char *key, char **ret) {
        const char *s = json_string_value(json_object_get(o, key));
        *ret = s ? strdup(s) : NULL;
        return s && !*ret ? -ENOMEM : 0;
}

int docker_store_from_info(json_t *info, DockerStore *ret) {
        DockerStore s = {};
        json_t *pair, *cd;
        size_t i;
        int r;

        if (!json_is_object(info) || !ret)
                return -EBADMSG;
        json_array_foreach(json_object_get(info, "DriverStatus"), i, pair) {
                const char *k = json_string_value(json_array_get(pair, 0));
                const char *v = json_string_value(json_array_get(pair, 1));
                if (k && v && streq(k, "driver-type") && streq(v, "io.containerd.snapshotter.v1"))
                        s.containerd = true;
        }
        cd = json_object_get(info, "Containerd");
        r = dup_string(info, "Driver", &s.driver);
        if (r >= 0)
                r = dup_string(info, "DockerRootDir", &s.root);
        if (r >= 0)
                r = dup_string(cd, "Address", &s.containerd_address);
        if (r >= 0)
                r = dup_string(json_object_get(cd, "Namespaces"), "Containers", &s.containerd_namespace);
        if (r >= 0 && !s.containerd_namespace && s.containerd && !(s.containerd_namespace = strdup("moby")))
                r = -ENOMEM;
        if (r < 0) {
                docker_store_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

void docker_store_done(DockerStore *s) {
        if (!s)
                return;
        free(s->driver);
        free(s->root);
        free(s->containerd_address);
        free(s->containerd_namespace);
        *s = (DockerStore) {};
}

const char *docker_store_name(const DockerStore *s) { return s && s->containerd ? "containerd" : "classic"; }
