; dkv.nsi -- the Windows installer of dkv (NSIS 3), as laid out in
; docs/internals/operations.md ("Names and paths", "Packages"):
;
;   C:\Program Files\dkv\bin       dkv.exe, dkv-node.exe, dkv-manager.exe
;   C:\Program Files\dkv\include   dkv.h, dkv\*.h
;   C:\Program Files\dkv\lib       libdkv (when the build made one)
;   C:\Program Files\dkv\doc       README.md and the guides
;   C:\Program Files\WindowsPowerShell\Modules\Clustron.DKV.AdminShell,
;                                 ...\Clustron.DKV.ClientShell
;   C:\ProgramData\dkv             dkv-manager.conf (written when missing,
;                                 kept otherwise), authorized_keys, data\,
;                                 dkv-manager.log
;
; It registers the service dkv-manager (dkv-manager.exe
; --install-service --config C:\ProgramData\dkv\dkv-manager.conf), starts
; it, opens dkv's port ranges in the firewall (dkv.exe firewall open
; -IfActive -Config ...), adds bin to the system PATH (the PowerShell
; modules find dkv.exe there) and writes the uninstaller with its Add/
; Remove Programs entry.  The uninstaller stops and removes the service,
; closes every firewall rule dkv made and removes the programs;
; C:\ProgramData\dkv stays unless /PURGE is given.
;
; Build (tests/win/test-wine-installer.sh does):
;   makensis -DVERSION=0.1.0 -DBINDIR=BUILD -DSRCDIR=SRC [-DOUTFILE=F]
;            packaging/windows/dkv.nsi
; BINDIR holds the three .exe files (and .libs\ with libdkv, if any).
; Command line of the installer: /S silent; /NOSTART registers the
; service without starting it; /D=DIR the installation directory (last).
; Of the uninstaller: /S silent; /PURGE also removes C:\ProgramData\dkv.

Unicode true
Target amd64-unicode
ManifestSupportedOS all
RequestExecutionLevel admin
SetCompressor /SOLID lzma

!include LogicLib.nsh
!include FileFunc.nsh
!include WordFunc.nsh
!include x64.nsh
!include WinMessages.nsh

!ifndef VERSION
  !error "makensis -DVERSION=X.Y.Z (configure.ac's version) is required"
!endif
!ifndef BINDIR
  !error "makensis -DBINDIR=DIR (the build directory with the .exe files)"
!endif
!ifndef SRCDIR
  !error "makensis -DSRCDIR=DIR (the source tree) is required"
!endif
!ifndef OUTFILE
  !define OUTFILE "dkv-${VERSION}-setup.exe"
!endif

!define SERVICE "dkv-manager"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\dkv"
!define ENV_KEY \
  "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
!define MODULES "$PROGRAMFILES64\WindowsPowerShell\Modules"

Name "dkv ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\dkv"
BrandingText "dkv ${VERSION}"
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "dkv"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "dkv installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "the dkv authors"

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Var DataDir   ; C:\ProgramData\dkv
Var Conf      ; $DataDir\dkv-manager.conf

; Runs the command line $0, logging its output; leaves its exit status
; (or "error" when it could not run) in $1.
!macro RunLogged
  nsExec::ExecToLog $0
  Pop $1
  DetailPrint "$0: exit status $1"
!macroend

; Sets $DataDir and $Conf (all users' application data: C:\ProgramData).
!macro SetPaths
  SetShellVarContext all
  StrCpy $DataDir "$APPDATA\dkv"
  StrCpy $Conf "$DataDir\dkv-manager.conf"
!macroend

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP|MB_OK "dkv needs 64-bit Windows." /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
  !insertmacro SetPaths
FunctionEnd

Function un.onInit
  SetRegView 64
  !insertmacro SetPaths
FunctionEnd

; Writes the settings file $Conf unless it exists (an upgrade or the
; administrator's own settings are kept).
Function WriteConf
  ${If} ${FileExists} "$Conf"
    DetailPrint "keeping $Conf"
    Return
  ${EndIf}
  ClearErrors
  FileOpen $0 "$Conf" w
  ${If} ${Errors}
    DetailPrint "cannot write $Conf"
    SetErrors
    Return
  ${EndIf}
  FileWrite $0 "# $Conf -- dkv-manager's settings (its --config$\r$\n"
  FileWrite $0 "# file): 'name = value' lines with the names of its$\r$\n"
  FileWrite $0 "# flags (dkv-manager --help).  'dkv firewall open$\r$\n"
  FileWrite $0 "# -Config' reads the three ranges below.  After a$\r$\n"
  FileWrite $0 "# change: Restart-Service dkv-manager.$\r$\n"
  FileWrite $0 "data-dir = $DataDir\data$\r$\n"
  FileWrite $0 "authorized-keys = $DataDir\authorized_keys$\r$\n"
  FileWrite $0 "log-file = $DataDir\dkv-manager.log$\r$\n"
  FileWrite $0 "port = 7801$\r$\n"
  FileWrite $0 "bind = 0.0.0.0$\r$\n"
  FileWrite $0 "management-range = 7801-7810$\r$\n"
  FileWrite $0 "cluster-range = 7811-7860$\r$\n"
  FileWrite $0 "client-range = 7861-7899$\r$\n"
  FileClose $0
  DetailPrint "wrote $Conf"
FunctionEnd

; authorized_keys beside the settings, trusting the admin key of the
; user running the installer (the service runs as LocalSystem, whose own
; key no admin holds), unless it exists.  Without a key (dkv.exe failed)
; the manager makes the file itself on its first start, trusting only
; LocalSystem's key: docs/operations.md says how admins add theirs.
Function WriteKeys
  ${If} ${FileExists} "$DataDir\authorized_keys"
    Return
  ${EndIf}
  ; The first run makes the key when the user has none, and says so on
  ; stderr, which nsExec mixes into the output: the second prints only
  ; the line.
  nsExec::ExecToStack '"$INSTDIR\bin\dkv.exe" Get-DkvAdminKey'
  Pop $1
  Pop $2
  nsExec::ExecToStack '"$INSTDIR\bin\dkv.exe" Get-DkvAdminKey'
  Pop $1
  Pop $2
  StrCpy $3 $2 8
  ${If} $1 != 0
  ${OrIf} $3 != "ed25519 "
    DetailPrint "no admin key (dkv.exe Get-DkvAdminKey: $1 $2)"
    Return
  ${EndIf}
  FileOpen $0 "$DataDir\authorized_keys" w
  FileWrite $0 "# Admin keys the dkv manager accepts, one per line.$\r$\n"
  FileWrite $0 "$2"
  FileClose $0
  DetailPrint "wrote $DataDir\authorized_keys"
FunctionEnd

; Adds $INSTDIR\bin to the system PATH unless it is there.  NSIS strings
; are bounded: a PATH too long to read whole is left alone.
Function AddToPath
  ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
  StrLen $1 $0
  ${If} $1 >= ${NSIS_MAX_STRLEN}
    DetailPrint "PATH too long to change: add $INSTDIR\bin yourself"
    Return
  ${EndIf}
  ClearErrors
  ${WordFind} "$0;" "$INSTDIR\bin;" "E+1{" $2
  ${IfNot} ${Errors}
    Return
  ${EndIf}
  ${If} $0 == ""
    StrCpy $0 "$INSTDIR\bin"
  ${Else}
    StrCpy $0 "$0;$INSTDIR\bin"
  ${EndIf}
  WriteRegExpandStr HKLM "${ENV_KEY}" "Path" $0
  SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 \
    "STR:Environment" /TIMEOUT=2000
FunctionEnd

; Removes $INSTDIR\bin from the system PATH.
Function un.RemoveFromPath
  ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
  StrLen $1 $0
  ${If} $1 >= ${NSIS_MAX_STRLEN}
    Return
  ${EndIf}
  ${un.WordReplace} ";$0;" ";$INSTDIR\bin;" ";" "+" $2
  ; Strip the guards added above.
  StrCpy $2 $2 "" 1
  StrCpy $2 $2 -1
  ${If} $2 != $0
    WriteRegExpandStr HKLM "${ENV_KEY}" "Path" $2
    SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 \
      "STR:Environment" /TIMEOUT=2000
  ${EndIf}
FunctionEnd

Section "dkv" SecMain
  SectionIn RO
  SetRegView 64

  ; An older installation's service holds its programs open: it is
  ; stopped (its nodes with it) and removed, from wherever it was
  ; installed.
  ReadRegStr $4 HKLM "${UNINST_KEY}" "InstallLocation"
  ${If} $4 != ""
  ${AndIf} ${FileExists} "$4\bin\dkv-manager.exe"
    StrCpy $0 '"$4\bin\dkv-manager.exe" --uninstall-service'
    !insertmacro RunLogged
  ${ElseIf} ${FileExists} "$INSTDIR\bin\dkv-manager.exe"
    StrCpy $0 '"$INSTDIR\bin\dkv-manager.exe" --uninstall-service'
    !insertmacro RunLogged
  ${EndIf}

  SetOutPath "$INSTDIR\bin"
  File "${BINDIR}\dkv.exe"
  File "${BINDIR}\dkv-node.exe"
  File "${BINDIR}\dkv-manager.exe"
!if /FileExists "${BINDIR}\.libs\libdkv-0.dll"
  File "${BINDIR}\.libs\libdkv-0.dll"
!endif

  SetOutPath "$INSTDIR\include"
  File "${SRCDIR}\include\dkv.h"
  SetOutPath "$INSTDIR\include\dkv"
  File "${SRCDIR}\include\dkv\*.h"
!if /FileExists "${BINDIR}\.libs\libdkv.dll.a"
  SetOutPath "$INSTDIR\lib"
  File "${BINDIR}\.libs\libdkv.dll.a"
!else if /FileExists "${BINDIR}\.libs\libdkv.a"
  SetOutPath "$INSTDIR\lib"
  File "${BINDIR}\.libs\libdkv.a"
!endif

  SetOutPath "$INSTDIR\doc"
  File "${SRCDIR}\README.md"
  File /nonfatal "${SRCDIR}\docs\operations.md"
  File /nonfatal "${SRCDIR}\docs\clientshell.md"
  File /nonfatal "${SRCDIR}\docs\adminshell.md"
  File /nonfatal "${SRCDIR}\docs\admin-api.md"
  File /nonfatal "${SRCDIR}\docs\manager.md"
  File /nonfatal "${SRCDIR}\docs\api.md"

  SetOutPath "${MODULES}\Clustron.DKV.AdminShell"
  File "${SRCDIR}\win32\powershell\Clustron.DKV.AdminShell\*.psd1"
  File "${SRCDIR}\win32\powershell\Clustron.DKV.AdminShell\*.psm1"
  SetOutPath "${MODULES}\Clustron.DKV.ClientShell"
  File "${SRCDIR}\win32\powershell\Clustron.DKV.ClientShell\*.psd1"
  File "${SRCDIR}\win32\powershell\Clustron.DKV.ClientShell\*.psm1"

  ; The settings, the admins' keys, the data directory.
  CreateDirectory "$DataDir"
  CreateDirectory "$DataDir\data"
  Call WriteConf
  Call WriteKeys
  ; Only SYSTEM and the Administrators reach the keys and data
  ; (inheritance from C:\ProgramData would let every user read them).
  StrCpy $0 '"$SYSDIR\icacls.exe" "$DataDir" /inheritance:r /grant:r \
*S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F'
  !insertmacro RunLogged

  ; The uninstaller and its Add/Remove Programs entry.
  SetOutPath "$INSTDIR"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "dkv ${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "the dkv authors"
  WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" \
    '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" \
    '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKLM "${UNINST_KEY}" "EstimatedSize" "$0"

  Call AddToPath

  ; The firewall first, then the service (it starts listening at once).
  StrCpy $0 '"$INSTDIR\bin\dkv.exe" firewall open -IfActive -Config "$Conf"'
  !insertmacro RunLogged
  StrCpy $0 '"$INSTDIR\bin\dkv-manager.exe" --install-service \
--config "$Conf"'
  !insertmacro RunLogged
  ${If} $1 != 0
    MessageBox MB_ICONEXCLAMATION|MB_OK \
      "Could not register the service ${SERVICE} (exit status $1)." \
      /SD IDOK
    SetErrorLevel 2
    Return
  ${EndIf}
  ${GetParameters} $2
  ClearErrors
  ${GetOptions} $2 "/NOSTART" $3
  ${If} ${Errors}
    StrCpy $0 '"$SYSDIR\sc.exe" start ${SERVICE}'
    !insertmacro RunLogged
    ${If} $1 != 0
      DetailPrint "the service did not start: see $DataDir\dkv-manager.log"
    ${EndIf}
  ${EndIf}
SectionEnd

Section "Uninstall"
  SetRegView 64

  ; The service (stopped, its nodes with it), then every firewall rule
  ; dkv made (not only the settings' ranges): afterwards no program
  ; knows them.
  StrCpy $0 '"$INSTDIR\bin\dkv-manager.exe" --uninstall-service'
  !insertmacro RunLogged
  StrCpy $0 '"$INSTDIR\bin\dkv.exe" firewall close -IfActive'
  !insertmacro RunLogged

  Call un.RemoveFromPath

  Delete "$INSTDIR\bin\dkv.exe"
  Delete "$INSTDIR\bin\dkv-node.exe"
  Delete "$INSTDIR\bin\dkv-manager.exe"
  Delete "$INSTDIR\bin\libdkv-0.dll"
  RMDir "$INSTDIR\bin"
  RMDir /r "$INSTDIR\include"
  RMDir /r "$INSTDIR\lib"
  RMDir /r "$INSTDIR\doc"
  RMDir /r "${MODULES}\Clustron.DKV.AdminShell"
  RMDir /r "${MODULES}\Clustron.DKV.ClientShell"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINST_KEY}"

  ${un.GetParameters} $2
  ClearErrors
  ${un.GetOptions} $2 "/PURGE" $3
  ${IfNot} ${Errors}
    RMDir /r "$DataDir"
    DetailPrint "removed $DataDir"
  ${Else}
    DetailPrint "kept $DataDir (settings, keys, data)"
  ${EndIf}
SectionEnd
