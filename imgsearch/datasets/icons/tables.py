"""The icons-v1 data tables: the icon themes (one style each) and the curated subjects with the
freedesktop icon names that draw them and their query texts, and the mapping from an icon name to
its subject."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


# --------------------------------------------------------------------------------------- themes
@dataclass(frozen=True)
class Theme:
    style: str  # the style label used in labels.json and as directory name
    package: str  # Debian package
    theme_dir: str  # directory under usr/share/icons/ inside the package
    note: str = ""


THEMES: tuple[Theme, ...] = (
    Theme("tango", "tango-icon-theme", "Tango", "Tango Desktop Project (2005), gradients, thin outlines"),
    Theme("gnome", "gnome-icon-theme", "gnome", "GNOME 2/3 classic, photo-realistic shading"),
    Theme("oxygen", "oxygen-icon-theme", "oxygen", "KDE 4 Oxygen, glossy and realistic"),
    Theme("breeze", "breeze-icon-theme", "breeze", "KDE Plasma 5 Breeze, flat"),
    Theme("papirus", "papirus-icon-theme", "Papirus", "Papirus, flat material-like"),
    Theme("elementary", "elementary-icon-theme", "elementary", "elementary OS, soft gradients"),
    Theme("faenza", "faenza-icon-theme", "Faenza", "Faenza, glossy dark-framed"),
    Theme("moka", "moka-icon-theme", "Moka", "Moka, flat with long shadows"),
    Theme("paper", "paper-icon-theme", "Paper", "Paper, flat with paper shadows"),
    Theme("yaru", "yaru-theme-icon", "Yaru", "Ubuntu Yaru, rounded with soft shading"),
)

# Also in Debian bookworm and checked with `coverage --all`, but not built by default: some are close to a
# theme above (mate/adwaita/gnome-colors ~ gnome/tango, elementary-xfce ~ elementary, mint-y/numix ~ the
# flat themes), some draw too few of the subjects (nuovext, suru), deepin has SVGs rsvg-convert rejects.
EXTRA_THEMES: tuple[Theme, ...] = (
    Theme("numix", "numix-icon-theme", "Numix", "Numix, flat"),
    Theme("mint-y", "mint-y-icons", "Mint-Y", "Linux Mint Mint-Y, flat"),
    Theme("nuovext", "lxde-icon-theme", "nuoveXT2", "LXDE nuoveXT 2, glossy"),
    Theme("mate", "mate-icon-theme", "mate", "MATE, GNOME 2 lineage"),
    Theme("suru", "suru-icon-theme", "suru", "Ubuntu Touch Suru, line art"),
    Theme("deepin", "deepin-icon-theme", "bloom", "Deepin bloom"),
    Theme("adwaita", "adwaita-icon-theme", "Adwaita", "GNOME Adwaita 43"),
    Theme("elementary-xfce", "elementary-xfce-icon-theme", "elementary-xfce", "elementary for Xfce"),
    Theme("gnome-colors", "gnome-colors-common", "gnome-colors-common", "GNOME Colors (Tango-based)"),
)


# ------------------------------------------------------------------------------------- subjects
@dataclass(frozen=True)
class Subject:
    name: str
    query: str  # natural-language query text
    icon_names: tuple[str, ...]  # freedesktop / application icon names, in order of preference


# fmt: off
ALL_SUBJECTS: tuple[Subject, ...] = (
    Subject("printer", "a printer", (
        "printer", "printer-network", "document-print", "printer-remote", "printer-printing",
        "system-config-printer", "printer-local", "xfce-printer", "gnome-dev-printer")),
    Subject("camera", "a photo camera", (
        "camera-photo", "accessories-camera", "camera", "gnome-dev-camera", "digikam")),
    Subject("folder", "a folder", ("folder", "inode-directory", "folder-open")),
    Subject("trash", "a trash can", (
        "user-trash", "user-trash-full", "trashcan_empty", "trashcan_full", "emptytrash")),
    Subject("calculator", "a calculator", (
        "accessories-calculator", "calc", "gnome-calculator", "org.gnome.Calculator", "kcalc",
        "galculator", "calculator", "mate-calc", "xcalc")),
    Subject("music", "music, a musical note", (
        "audio-x-generic", "multimedia-audio-player", "music", "rhythmbox", "org.gnome.Rhythmbox",
        "audio-player", "sound")),
    Subject("mail", "an envelope, e-mail", (
        "internet-mail", "email", "mail-unread", "mail-read", "evolution", "kmail", "mail-message-new",
        "mail-client", "emblem-mail", "mail_generic")),
    Subject("terminal", "a command-line terminal window", (
        "utilities-terminal", "terminal", "gnome-terminal", "org.gnome.Terminal", "konsole", "xterm",
        "Terminal", "xfce-terminal", "mate-terminal", "lxterminal")),
    Subject("calendar", "a calendar", (
        "x-office-calendar", "office-calendar", "calendar", "evolution-calendar", "org.gnome.Calendar",
        "korganizer", "gnome-calendar", "date", "stock_calendar")),
    Subject("clock", "a clock", (
        "clock", "alarm-clock", "org.gnome.clocks", "gnome-clocks", "preferences-system-time",
        "time-admin", "appointment-soon", "xclock")),
    Subject("globe", "a globe or a compass, a web browser", (
        "web-browser", "internet-web-browser", "emblem-web", "globe",
        "gnome-globe", "earth")),
    Subject("picture", "a picture, a photo of a landscape", (
        "image-x-generic", "image-viewer", "eog", "org.gnome.eog", "gthumb", "gwenview", "shotwell",
        "applications-graphics", "ristretto", "gpicview", "image")),
    Subject("text-editor", "a text editor, a sheet of paper with a pen", (
        "accessories-text-editor", "text-editor", "gedit", "org.gnome.gedit", "kate", "kwrite",
        "mousepad", "pluma", "leafpad", "kedit")),
    Subject("document", "a text document", (
        "text-x-generic", "x-office-document", "text-plain", "document", "gnome-mime-text",
        "application-x-office-document", "txt")),
    Subject("video", "a video, a film reel or a video camera", (
        "video-x-generic", "camera-video", "multimedia-video-player", "totem", "org.gnome.Totem",
        "video-player", "video", "parole")),
    Subject("settings", "settings, gears and tools", (
        "preferences-system", "preferences-desktop", "systemsettings", "configure", "emblem-system",
        "applications-system", "gnome-settings", "org.gnome.Settings", "gnome-control-center",
        "preferences-other", "system-settings", "preferences-desktop-default-applications")),
    Subject("keyboard", "a computer keyboard", (
        "input-keyboard", "preferences-desktop-keyboard", "keyboard", "gnome-dev-keyboard",
        "preferences-desktop-keyboard-shortcuts")),
    Subject("mouse", "a computer mouse", (
        "input-mouse", "preferences-desktop-peripherals", "mouse", "gnome-dev-mouse-optical",
        "preferences-desktop-mouse", "gnome-dev-mouse-ball")),
    Subject("battery", "a battery", (
        "battery", "battery-full", "battery-good", "battery-full-charged", "gnome-power-manager",
        "xfce4-power-manager-settings", "preferences-system-power", "ac-adapter", "battery-100")),
    Subject("computer", "a desktop computer", (
        "computer", "system", "user-desktop", "gnome-fs-client", "computer-desktop", "my-computer")),
    Subject("laptop", "a laptop", ("computer-laptop", "laptop", "gnome-dev-computer")),
    Subject("user", "a person, a user avatar", (
        "avatar-default", "user-info", "system-users", "stock_person", "user-identity",
        "preferences-desktop-personal", "user", "im-user", "user-available")),
    Subject("home", "a house, the home folder", ("user-home", "folder-home", "go-home", "gohome", "home")),
    Subject("harddisk", "a hard disk drive", (
        "drive-harddisk", "harddrive", "gnome-dev-harddisk", "drive-harddisk-system", "hdd",
        "drive-harddisk-ieee1394")),
    Subject("disc", "an optical disc, a CD or DVD", (
        "media-optical", "drive-optical", "media-cdrom", "gnome-dev-cdrom", "cdrom", "media-optical-cd",
        "media-optical-dvd", "gnome-dev-dvd", "brasero", "media-optical-audio")),
    Subject("usb-drive", "a USB flash drive", (
        "drive-removable-media-usb", "drive-removable-media-usb-pendrive", "media-removable",
        "drive-removable-media", "media-flash", "gnome-dev-removable-usb")),
    Subject("phone", "a mobile phone", (
        "phone", "smartphone", "phone-apple-iphone", "gnome-dev-phone", "phone-openmoko-freerunner")),
    Subject("speaker", "a loudspeaker", (
        "audio-speakers", "speaker", "multimedia-volume-control", "audio-volume-high",
        "gnome-volume-control")),
    Subject("microphone", "a microphone", ("audio-input-microphone", "microphone", "audio-recorder",
                                           "gnome-sound-recorder", "org.gnome.SoundRecorder")),
    Subject("headphones", "headphones", ("audio-headphones", "audio-headset", "headphones", "headset")),
    Subject("scanner", "a flatbed scanner", ("scanner", "xsane", "simple-scan", "org.gnome.SimpleScan",
                                             "gnome-dev-scanner", "skanlite")),
    Subject("monitor", "a computer monitor, a display screen", (
        "video-display", "display", "preferences-desktop-display", "monitor", "gnome-display-properties",
        "xfce-display")),
    Subject("help", "help, a lifebuoy or question mark", (
        "help-browser", "system-help", "help", "help-contents", "gnome-help", "khelpcenter", "help-about",
        "yelp", "org.gnome.Yelp")),
    Subject("search", "a magnifying glass, search", (
        "system-search", "edit-find", "search", "gnome-searchtool", "kfind", "catfish", "find")),
    Subject("lock", "a padlock", (
        "system-lock-screen", "changes-prevent", "lock", "emblem-readonly", "object-locked",
        "gnome-lockscreen", "xfce-system-lock")),
    Subject("package", "a cardboard box, a software package", (
        "package-x-generic", "package", "system-software-install", "application-x-deb", "package-install",
        "synaptic", "gnome-package")),
    Subject("archive", "a compressed archive file", (
        "application-x-archive", "ark", "file-roller", "org.gnome.FileRoller", "package-x-compressed",
        "application-x-compressed-tar", "application-zip", "xarchiver", "engrampa")),
    Subject("font", "a font, letters and typography", (
        "font-x-generic", "preferences-desktop-font", "font", "fonts", "gnome-font-viewer",
        "org.gnome.font-viewer", "kfontview", "application-x-font-ttf")),
    Subject("chat", "speech bubbles, chat", (
        "internet-chat", "empathy", "pidgin", "chat", "kopete", "im-message-new", "xchat", "hexchat",
        "konversation")),
    Subject("gamepad", "a game controller", (
        "input-gaming", "applications-games", "joystick", "gamepad", "input-gamepad",
        "preferences-desktop-gaming")),
    Subject("network", "a network cable, a wired network", (
        "network-wired", "preferences-system-network", "network", "nm-device-wired", "network-server",
        "gnome-dev-ethernet", "network-card")),
    Subject("book", "a book, a dictionary", (
        "accessories-dictionary", "book", "dictionary", "x-office-address-book", "bookcase",
        "accessories-ebook-reader", "help-contents-book", "calibre-gui")),
    Subject("spreadsheet", "a spreadsheet", (
        "x-office-spreadsheet", "libreoffice-calc", "gnumeric", "application-vnd.ms-excel",
        "office-spreadsheet", "spreadsheet")),
    Subject("presentation", "a presentation slide", (
        "x-office-presentation", "libreoffice-impress", "application-vnd.ms-powerpoint",
        "office-presentation")),
    Subject("paint", "painting, a brush and palette", (
        "applications-graphics", "gimp", "kolourpaint", "mypaint", "krita", "tuxpaint", "pinta",
        "preferences-desktop-color", "color-picker", "applications-painting")),
    Subject("wifi", "a wireless signal", (
        "network-wireless", "nm-device-wireless", "network-wireless-signal-excellent", "wifi-radar",
        "preferences-system-network-wireless")),
    Subject("weather", "the weather, sun and clouds", (
        "weather-few-clouds", "weather-clear", "org.gnome.Weather", "gnome-weather", "weather",
        "weather-overcast", "weather-showers")),
    Subject("map", "a map", ("maps", "org.gnome.Maps", "gnome-maps", "marble", "map", "applications-maps")),
    Subject("bluetooth", "the bluetooth symbol", (
        "bluetooth", "preferences-system-bluetooth", "blueman", "bluetooth-active", "bluedevil")),
    Subject("notes", "notes, a notepad", (
        "accessories-notes", "notes", "tomboy", "gnote", "knotes", "xpad", "org.gnome.Notes",
        "stock_notes", "x-office-notes", "xfce4-notes-plugin")),
    Subject("screenshot", "a screenshot tool", (
        "applications-screenshot", "gnome-screenshot", "org.gnome.Screenshot", "accessories-screenshot",
        "ksnapshot", "spectacle", "xfce4-screenshooter", "screenshot")),
    Subject("download", "a download arrow", (
        "folder-download", "download", "transmission", "emblem-downloads", "go-down", "ktorrent")),
    Subject("key", "a key, passwords", (
        "dialog-password", "seahorse", "org.gnome.seahorse.Application", "password", "gnome-keyring",
        "keyring", "application-pgp-keys", "kwalletmanager", "key", "preferences-desktop-cryptography")),
    Subject("bookmark", "a bookmark", ("bookmark-new", "user-bookmarks", "bookmarks", "bookmark",
                                       "bookmarks-organize")),
    Subject("star", "a star", ("starred", "star", "rating", "emblem-star", "non-starred")),
    Subject("bell", "a bell, notifications", (
        "preferences-system-notifications", "notification", "notifications", "bell", "preferences-desktop-notification",
        "preferences-desktop-notification-bell")),
    Subject("webcam", "a webcam", ("camera-web", "webcam", "cheese", "org.gnome.Cheese", "guvcview", "kamoso")),
    Subject("television", "a television set", ("video-television", "tv", "television", "totem-tv", "kaffeine",
                                               "me-tv", "tvtime")),
    Subject("power", "a power button, shut down", (
        "system-shutdown", "gnome-shutdown", "system-log-out", "application-exit", "system-shutdown-panel")),
    Subject("flag", "a flag", ("flag", "emblem-flag", "mail-mark-important", "flag-red")),
)

# The subjects built by default: concrete objects that at least ~8 of the 10 themes draw, with the
# ambiguous names removed after looking at the picks. The rest stay available to `coverage --all`.
DEFAULT_SUBJECT_NAMES: tuple[str, ...] = (
    "printer", "camera", "folder", "trash", "calculator", "music", "mail", "terminal", "calendar", "clock",
    "globe", "picture", "text-editor", "video", "settings", "keyboard", "mouse", "battery", "computer",
    "harddisk", "disc", "phone", "speaker", "search", "gamepad",
)
# fmt: on
SUBJECTS: tuple[Subject, ...] = tuple(s for s in ALL_SUBJECTS if s.name in DEFAULT_SUBJECT_NAMES)
EXTRA_SUBJECTS: tuple[Subject, ...] = tuple(s for s in ALL_SUBJECTS if s.name not in DEFAULT_SUBJECT_NAMES)


def _name_table(subjects: Iterable[Subject]) -> dict[str, str]:
    table: dict[str, str] = {}
    for subject in subjects:
        for name in subject.icon_names:
            table.setdefault(name, subject.name)
    return table


NAME_TO_SUBJECT: dict[str, str] = _name_table(SUBJECTS)
# every curated subject (ALL_SUBJECTS), for datasets that map any icon name they keep to a curated subject
CURATED_NAME_TO_SUBJECT: dict[str, str] = _name_table(ALL_SUBJECTS)
SUBJECT_BY_NAME: dict[str, Subject] = {s.name: s for s in ALL_SUBJECTS}
THEME_BY_STYLE: dict[str, Theme] = {t.style: t for t in THEMES}


def subject_for_icon(icon_name: str) -> str | None:
    """Map a freedesktop icon name (or a file name such as ``printer.png``) to a subject, else None.

    Only the explicit synonym table is used (exact match, no fuzzy matching); ``-symbolic`` icons are
    monochrome glyphs and never map.
    """
    name = icon_name
    for ext in (".png", ".svg", ".svgz", ".xpm"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    if name.endswith("-symbolic"):
        return None
    return NAME_TO_SUBJECT.get(name)


_ID_BAD = re.compile(r"[^A-Za-z0-9._/-]+")


def sanitize_id(raw: str) -> str:
    """``<theme>/<subject>/<name>`` reduced to ``[A-Za-z0-9._/-]``: other runs become ``_``, empty,
    ``.`` and ``..`` segments are dropped (so an id is always a safe relative path)."""
    cleaned = _ID_BAD.sub("_", raw.replace("\\", "/"))
    parts = [p for p in cleaned.split("/") if p not in ("", ".", "..")]
    parts = [("_" + p) if p.startswith(".") else p for p in parts]  # no hidden files
    return "/".join(parts)
