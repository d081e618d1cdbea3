#include "textflag.h"

// func Callers(pcs []uintptr) int
//
// NOFRAME: Callers pushes no frame pointer, so BP is still its caller's:
// the caller's caller's BP is saved at 0(BP), and the return address into
// it at 8(BP). The walk ends at a nil frame pointer (a goroutine's first
// frame saves 0), at one that does not lie above the last, or at one more
// than 16 MiB above the first: a goroutine's frames lie close together on
// its stack, and a saved frame pointer far away is not one of them (a C
// frame's, in a cgo callback), so it ends the walk rather than being read.
TEXT ·Callers(SB),NOSPLIT|NOFRAME,$0-32
	MOVQ	pcs_base+0(FP), DI
	MOVQ	pcs_len+8(FP), CX
	MOVQ	BP, AX
	MOVQ	BP, R8
	ADDQ	$(16<<20), R8
	XORQ	DX, DX
loop:
	CMPQ	DX, CX
	JAE	done
	TESTQ	AX, AX
	JZ	done
	MOVQ	8(AX), BX
	MOVQ	BX, (DI)(DX*8)
	INCQ	DX
	MOVQ	(AX), BX
	CMPQ	BX, AX
	JLS	done
	CMPQ	BX, R8
	JAE	done
	MOVQ	BX, AX
	JMP	loop
done:
	MOVQ	DX, ret+24(FP)
	RET
