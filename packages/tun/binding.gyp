{
  "target_defaults": {
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
    "cflags_cc!": ["-fno-exceptions"],
    "defines": ["_GNU_SOURCE"]
  },
  "targets": [
    {
      "target_name": "tun",
      "sources": [
        "native/addon.cc",
        "native/thread_name.cc",
        "native/fresh_thread.cc",
        "native/tun_open.cc",
        "native/open_binding.cc",
        "native/queue.cc",
        "native/udp_open.cc",
        "native/udp_socket.cc",
        "native/ring_step.cc",
        "native/step_io.cc",
        "native/tun_io.cc",
        "native/udp_recv.cc",
        "native/udp_send.cc",
        "native/poll_in.cc",
        "native/ring_layout.cc",
        "native/readable_watch.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node -p \"require('@wirecage/napi-glue/gyp').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"]
    }
  ]
}
