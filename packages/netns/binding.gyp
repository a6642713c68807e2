{
  "target_defaults": {
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
    "cflags_cc!": ["-fno-exceptions"],
    "defines": ["_GNU_SOURCE"]
  },
  "targets": [
    {
      "target_name": "netns",
      "sources": [
        "native/addon.cc",
        "native/cage/plan.cc",
        "native/exec.cc",
        "native/icmp_sockets.cc",
        "native/child.cc",
        "native/join.cc",
        "native/memfd.cc",
        "native/netlink_monitor.cc",
        "native/nfnetlink.cc",
        "native/threads.cc",
        "native/netns_create.cc",
        "native/nlmsg.cc",
        "native/rtnl.cc",
        "native/socket_errors.cc",
        "native/socket_util.cc",
        "native/sockets.cc",
        "native/spawn.cc",
        "native/unix_dgram.cc",
        "native/wait.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node -p \"require('@wirecage/napi-glue/gyp').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"]
    },
    {
      "target_name": "wirecage-userns",
      "type": "executable",
      "sources": ["native/userns_helper.cc"]
    },
    {
      "target_name": "wirecage-cage",
      "type": "executable",
      "sources": ["native/cage/main.cc", "native/cage/linger.cc", "native/cage/mounts.cc", "native/cage/plan.cc", "native/cage/process.cc", "native/cage/terminal.cc"]
    },
    {
      "target_name": "wirecage-join",
      "type": "executable",
      "sources": ["native/join/main.cc", "native/cage/plan.cc", "native/cage/process.cc", "native/cage/terminal.cc"]
    },
    {
      "target_name": "wirecage-hold",
      "type": "executable",
      "sources": ["native/join/hold.cc"]
    }
  ]
}
