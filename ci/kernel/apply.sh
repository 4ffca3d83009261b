#!/bin/sh
# Wires refpage_create into an unpacked Linux 6.1 tree (the argument, default
# the current directory): mm/refpage.c, its Makefile line, its prototype, and
# x86_64 syscall number 448, which takes the place of process_mrelease in this
# test kernel only. Safe to run again on the same tree.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "${1:-.}"
tbl=arch/x86/entry/syscalls/syscall_64.tbl
grep -q '^448[[:space:]]\+common[[:space:]]\+\(process_mrelease\|refpage_create\)[[:space:]]' "$tbl" || {
    echo "apply.sh: $tbl has no entry 448 for process_mrelease: not the expected 6.1 tree" >&2
    exit 1
}
# Every file is touched only when it changes: a new mtime on the syscall table
# regenerates the syscall headers, and that rebuilds nearly the whole kernel.
cmp -s "$here/refpage.c" mm/refpage.c || cp "$here/refpage.c" mm/refpage.c
grep -q '^obj-y += refpage.o$' mm/Makefile || echo 'obj-y += refpage.o' >> mm/Makefile
grep -q '^448[[:space:]]\+common[[:space:]]\+refpage_create[[:space:]]' "$tbl" ||
    sed -i 's/^448\([[:space:]]\+\)common\([[:space:]]\+\)process_mrelease\([[:space:]]\+\)sys_process_mrelease$/448\1common\2refpage_create\3sys_refpage_create/' "$tbl"
grep -q '^448[[:space:]]\+common[[:space:]]\+refpage_create[[:space:]]\+sys_refpage_create$' "$tbl"
grep -q 'sys_refpage_create' include/linux/syscalls.h ||
    sed -i '/^asmlinkage long sys_process_mrelease(/i asmlinkage long sys_refpage_create(const void __user *content, unsigned int size,\n\t\t\t\t   unsigned long flags);' include/linux/syscalls.h
grep -q 'sys_refpage_create' include/linux/syscalls.h
