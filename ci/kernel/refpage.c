// SPDX-License-Identifier: GPL-2.0
/*
 * refpage_create(2) for the pattern-alloc test kernel (Linux 6.1, x86_64,
 * number 448 in place of process_mrelease). Written from the ABI in
 * pattern-alloc's DESIGN.md section 4 (the v5 patch's interface):
 *
 *   int refpage_create(const void *content, unsigned int size,
 *                      unsigned long flags);
 *
 * flags must be 0, size a power of two no larger than a page and content
 * aligned to size, else -EINVAL; unreadable content is -EFAULT. The size
 * bytes are copied once and repeated to fill one kernel page, the reference
 * page. The result is a new descriptor (O_RDONLY | O_CLOEXEC) of an
 * anonymous inode named "[refpage]".
 *
 * Fault strategy: one shared, read-only reference page (see README.md).
 * A read fault maps the reference page itself, read-only; a write fault
 * (first access or after a read) is a copy-on-write by the core fault code
 * into an ordinary anonymous page. So reading costs no memory, the first
 * write costs one page copy, MADV_DONTNEED drops the private copies and the
 * next access sees the reference page again, and fork() shares untouched
 * and read-only pages and isolates written ones as for any private mapping.
 * MAP_SHARED is refused (-EINVAL): the file has no writable contents.
 */
#include <linux/anon_inodes.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/syscalls.h>
#include <linux/uaccess.h>

/* The descriptor's private data: the reference page, one reference held
 * by the file, one more by every page table entry that maps it. */
struct refpage {
	struct page *page;
};

static vm_fault_t refpage_fault(struct vm_fault *vmf)
{
	struct refpage *ref = vmf->vma->vm_file->private_data;

	/*
	 * Hand the reference page to the core code with a reference for the
	 * page table entry. do_read_fault() maps it read-only (the mapping is
	 * private, so vm_page_prot has no write bit); do_cow_fault() copies
	 * it into a new anonymous page and drops the reference again; a
	 * later write to a read-mapped page goes through wp_page_copy(),
	 * because the page is not anonymous and so never reused in place.
	 */
	get_page(ref->page);
	vmf->page = ref->page;
	return 0;
}

static const struct vm_operations_struct refpage_vm_ops = {
	.fault = refpage_fault,
};

static int refpage_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (vma->vm_flags & VM_MAYSHARE)
		return -EINVAL;
	vma->vm_ops = &refpage_vm_ops;
	return 0;
}

static int refpage_release(struct inode *inode, struct file *file)
{
	struct refpage *ref = file->private_data;

	/* Every mapping holds the file, so no page table maps the page now. */
	put_page(ref->page);
	kfree(ref);
	return 0;
}

static const struct file_operations refpage_fops = {
	.mmap = refpage_mmap,
	.release = refpage_release,
	.llseek = noop_llseek,
};

SYSCALL_DEFINE3(refpage_create, const void __user *, content,
		unsigned int, size, unsigned long, flags)
{
	struct refpage *ref;
	unsigned int filled;
	char *bytes;
	int fd;

	if (flags)
		return -EINVAL;
	if (!is_power_of_2(size) || size > PAGE_SIZE)
		return -EINVAL;
	if (!IS_ALIGNED((unsigned long)content, size))
		return -EINVAL;

	ref = kzalloc(sizeof(*ref), GFP_KERNEL);
	if (!ref)
		return -ENOMEM;
	/* GFP_KERNEL is never highmem: page_address() is valid. */
	ref->page = alloc_page(GFP_KERNEL);
	if (!ref->page) {
		fd = -ENOMEM;
		goto free_ref;
	}
	bytes = page_address(ref->page);
	if (copy_from_user(bytes, content, size)) {
		fd = -EFAULT;
		goto free_page;
	}
	for (filled = size; filled < PAGE_SIZE; filled *= 2)
		memcpy(bytes + filled, bytes, filled);

	fd = anon_inode_getfd("[refpage]", &refpage_fops, ref,
			      O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto free_page;
	return fd;

free_page:
	__free_page(ref->page);
free_ref:
	kfree(ref);
	return fd;
}
