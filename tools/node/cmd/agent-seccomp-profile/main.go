// Command agent-seccomp-profile prints the seccomp profile the Helm chart gives the agent container
// (charts/parafork/files/agent-seccomp-<arch>.json): containerd's own RuntimeDefault profile, as
// containerd builds it for a container with exactly the chart's capabilities, plus pivot_root(2),
// which RuntimeDefault refuses whatever the capabilities and the Task sandbox needs (it enters each
// Task's root with pivot_root so that the agent's own mounts are detached from the Task's mount
// namespace, docs/deployment.md). Nothing else is added. The output is for this machine's
// architecture; test/node/seccomp-profile.test.ts checks the chart's copy against it.
//
//	go run ./cmd/agent-seccomp-profile CAP_SYS_ADMIN CAP_SYS_CHROOT ... > profile.json
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	capabilities := os.Args[1:]
	if len(capabilities) == 0 {
		fmt.Fprintln(os.Stderr, "usage: agent-seccomp-profile CAP_... (the container's capabilities)")
		os.Exit(2)
	}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: capabilities}}}
	profile := seccomp.DefaultProfile(spec)
	profile.Syscalls = append(profile.Syscalls, specs.LinuxSyscall{Names: []string{"pivot_root"}, Action: specs.ActAllow})
	out, err := json.MarshalIndent(profile, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
