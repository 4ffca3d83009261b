// A library with thread-local storage, loaded many times under different
// names by tls_dlopen.c: each copy's TLS block is allocated by ld.so on the
// first access from each thread (with the preloaded malloc), and the thread's
// DTV grows past its initial size.
__thread unsigned char tls_block[8192];
__thread unsigned long tls_counter;

unsigned long tls_touch(unsigned long value) {
    tls_block[value % sizeof tls_block] = (unsigned char)value;
    return ++tls_counter + tls_block[value % sizeof tls_block];
}
