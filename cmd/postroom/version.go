package main

import (
	"fmt"
	"runtime/debug"
)

// version is the release of this source tree.
const version = "0.1.0"

// versionString is "postroom 0.1.0 (revision abc1234, go1.26)".
func versionString() string {
	rev := "unknown"
	goVersion := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				rev = s.Value[:7]
			}
		}
	}
	return fmt.Sprintf("postroom %s (revision %s, %s)", version, rev, goVersion)
}
