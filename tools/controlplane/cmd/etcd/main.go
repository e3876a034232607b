// Command etcd is the stock etcd server, built from the version pinned in
// this module's go.mod so the dev cluster needs no downloaded binaries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
