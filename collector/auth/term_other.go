//go:build !linux

package auth

import "os"

// readNoEcho cannot turn the echo off here: the collector runs on Linux.
func readNoEcho(*os.File) (string, error) { return "", errEchoStays }
