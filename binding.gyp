{
  "targets": [
    {
      "target_name": "jail",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/jail.c", "native/notify.c"],
          "defines": ["NAPI_VERSION=8"],
          "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wshadow", "-Wno-unused-parameter"]
        }, {
          "type": "none"
        }]
      ]
    }
  ]
}
