{
  "targets": [
    {
      "target_name": "jail",
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/addon.c",
            "native/resolve.c", "native/open.c", "native/stat.c", "native/realpath.c",
            "native/setstat.c", "native/one-name.c", "native/two-names.c", "native/dir.c",
            "native/copy.c", "native/names.c", "native/job.c", "native/results.c", "native/jail.c",
            "native/net.c", "native/notify.c"
          ],
          "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
          # Hidden by default: the units share functions across files, and those names must not be
          # exported from the .node, where a same-named symbol of the process could interpose them.
          "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wshadow", "-Wno-unused-parameter",
                       "-fvisibility=hidden"]
        }, {
          "type": "none"
        }]
      ]
    }
  ]
}
