package main

import "labelstation/internal/buildinfo"

func versionString(name string) string { return name + " " + buildinfo.Get().String() }
