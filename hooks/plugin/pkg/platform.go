package pkg

import (
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

var errNotExecutable = errors.New("not an executable (ELF, Mach-O or PE)")

// BinaryPlatform reads the GOOS and GOARCH an executable was built for from
// its header (ELF, Mach-O or PE).
func BinaryPlatform(path string) (goos, goarch string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	goos, goarch, err = platformOf(f)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	return goos, goarch, nil
}

func platformOf(r io.ReaderAt) (goos, goarch string, err error) {
	if f, err := elf.NewFile(r); err == nil {
		return elfPlatform(f)
	}
	if f, err := macho.NewFile(r); err == nil {
		switch f.Cpu {
		case macho.CpuAmd64:
			return "darwin", "amd64", nil
		case macho.CpuArm64:
			return "darwin", "arm64", nil
		}
		return "", "", fmt.Errorf("unsupported Mach-O cpu %v", f.Cpu)
	}
	if f, err := pe.NewFile(r); err == nil {
		switch f.Machine {
		case pe.IMAGE_FILE_MACHINE_AMD64:
			return "windows", "amd64", nil
		case pe.IMAGE_FILE_MACHINE_ARM64:
			return "windows", "arm64", nil
		case pe.IMAGE_FILE_MACHINE_I386:
			return "windows", "386", nil
		}
		return "", "", fmt.Errorf("unsupported PE machine %#x", f.Machine)
	}
	return "", "", errNotExecutable
}

func elfPlatform(f *elf.File) (string, string, error) {
	goos := "linux"
	switch f.OSABI {
	case elf.ELFOSABI_FREEBSD:
		goos = "freebsd"
	case elf.ELFOSABI_NETBSD:
		goos = "netbsd"
	case elf.ELFOSABI_OPENBSD:
		goos = "openbsd"
	}
	le := f.ByteOrder == binary.LittleEndian
	switch f.Machine {
	case elf.EM_X86_64:
		return goos, "amd64", nil
	case elf.EM_386:
		return goos, "386", nil
	case elf.EM_AARCH64:
		return goos, "arm64", nil
	case elf.EM_ARM:
		return goos, "arm", nil
	case elf.EM_RISCV:
		return goos, "riscv64", nil
	case elf.EM_S390:
		return goos, "s390x", nil
	case elf.EM_LOONGARCH:
		return goos, "loong64", nil
	case elf.EM_PPC64:
		if le {
			return goos, "ppc64le", nil
		}
		return goos, "ppc64", nil
	case elf.EM_MIPS:
		if f.Class == elf.ELFCLASS64 {
			if le {
				return goos, "mips64le", nil
			}
			return goos, "mips64", nil
		}
		if le {
			return goos, "mipsle", nil
		}
		return goos, "mips", nil
	}
	return "", "", fmt.Errorf("unsupported ELF machine %v", f.Machine)
}
