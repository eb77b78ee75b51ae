"""The words of synthetic achievements, per language: names, what to do and what was done (the
locked and the unlocked description), the text a locked secret achievement shows, and the words
of title names. Index n of a list means the same thing in every language, so the locales of one
achievement are translations of each other."""

from __future__ import annotations

from typing import NamedTuple


class Words(NamedTuple):
    names: tuple[str, ...]  # achievement names
    counted: tuple[tuple[str, str], ...]  # (locked, unlocked) descriptions with {n}, for targets above 1
    single: tuple[tuple[str, str], ...]  # (locked, unlocked) descriptions without a count
    secret: str  # description and locked description of a secret achievement still locked


_EN = Words(
    ("First Steps", "Iron Will", "Sharpshooter", "Night Owl", "Collector", "Untouchable", "Explorer",
     "Team Player", "Speed Demon", "Survivor", "Treasure Hunter", "Tactician", "Lone Wolf", "Veteran",
     "Perfectionist", "Marathon", "Lucky Break", "Master Builder", "Globetrotter", "Legend"),
    (("Win {n} matches in any mode.", "Won {n} matches in any mode."),
     ("Collect {n} hidden relics.", "Collected {n} hidden relics."),
     ("Defeat {n} enemies without taking damage.", "Defeated {n} enemies without taking damage."),
     ("Complete {n} daily missions.", "Completed {n} daily missions."),
     ("Travel {n} kilometres on foot.", "Travelled {n} kilometres on foot.")),
    (("Finish the prologue.", "Finished the prologue."),
     ("Beat the final boss on Hard.", "Beat the final boss on Hard."),
     ("Find the secret room in the lighthouse.", "Found the secret room in the lighthouse."),
     ("Change your character's outfit.", "Changed your character's outfit."),
     ("Join a multiplayer session.", "Joined a multiplayer session.")),
    "This is a secret achievement. Keep playing to unlock it.",
)
_FR = Words(
    ("Premiers pas", "Volonté de fer", "Tireur d'élite", "Oiseau de nuit", "Collectionneur", "Intouchable",
     "Explorateur", "Esprit d'équipe", "Démon de la vitesse", "Survivant", "Chasseur de trésors", "Tacticien",
     "Loup solitaire", "Vétéran", "Perfectionniste", "Marathonien", "Coup de chance", "Maître bâtisseur",
     "Globe-trotteur", "Légende"),
    (("Gagnez {n} parties, tous modes confondus.", "Vous avez gagné {n} parties, tous modes confondus."),
     ("Récupérez {n} reliques cachées.", "Vous avez récupéré {n} reliques cachées."),
     ("Battez {n} ennemis sans subir de dégâts.", "Vous avez battu {n} ennemis sans subir de dégâts."),
     ("Terminez {n} missions quotidiennes.", "Vous avez terminé {n} missions quotidiennes."),
     ("Parcourez {n} kilomètres à pied.", "Vous avez parcouru {n} kilomètres à pied.")),
    (("Terminez le prologue.", "Vous avez terminé le prologue."),
     ("Battez le boss final en mode Difficile.", "Vous avez battu le boss final en mode Difficile."),
     ("Trouvez la salle secrète du phare.", "Vous avez trouvé la salle secrète du phare."),
     ("Changez la tenue de votre personnage.", "Vous avez changé la tenue de votre personnage."),
     ("Rejoignez une session multijoueur.", "Vous avez rejoint une session multijoueur.")),
    "Ce succès est secret. Continuez à jouer pour le débloquer.",
)
_DE = Words(
    ("Erste Schritte", "Eiserner Wille", "Scharfschütze", "Nachteule", "Sammler", "Unantastbar", "Entdecker",
     "Teamplayer", "Temposünder", "Überlebender", "Schatzjäger", "Taktiker", "Einzelgänger", "Veteran",
     "Perfektionist", "Marathon", "Glückstreffer", "Baumeister", "Weltenbummler", "Legende"),
    (("Gewinne {n} Matches in beliebigen Modi.", "{n} Matches in beliebigen Modi gewonnen."),
     ("Sammle {n} versteckte Relikte.", "{n} versteckte Relikte gesammelt."),
     ("Besiege {n} Gegner, ohne Schaden zu nehmen.", "{n} Gegner besiegt, ohne Schaden zu nehmen."),
     ("Schließe {n} Tagesmissionen ab.", "{n} Tagesmissionen abgeschlossen."),
     ("Lege {n} Kilometer zu Fuß zurück.", "{n} Kilometer zu Fuß zurückgelegt.")),
    (("Beende den Prolog.", "Prolog beendet."),
     ("Besiege den Endgegner auf „Schwer“.", "Endgegner auf „Schwer“ besiegt."),
     ("Finde den geheimen Raum im Leuchtturm.", "Geheimen Raum im Leuchtturm gefunden."),
     ("Ändere das Outfit deiner Figur.", "Outfit der Figur geändert."),
     ("Tritt einer Mehrspielersitzung bei.", "Einer Mehrspielersitzung beigetreten.")),
    "Dies ist ein geheimer Erfolg. Spiel weiter, um ihn freizuschalten.",
)
_ES = Words(
    ("Primeros pasos", "Voluntad de hierro", "Francotirador", "Ave nocturna", "Coleccionista", "Intocable",
     "Explorador", "Juego en equipo", "Demonio de la velocidad", "Superviviente", "Cazatesoros", "Estratega",
     "Lobo solitario", "Veterano", "Perfeccionista", "Maratón", "Golpe de suerte", "Maestro constructor",
     "Trotamundos", "Leyenda"),
    (("Gana {n} partidas en cualquier modo.", "Has ganado {n} partidas en cualquier modo."),
     ("Reúne {n} reliquias ocultas.", "Has reunido {n} reliquias ocultas."),
     ("Derrota a {n} enemigos sin recibir daño.", "Has derrotado a {n} enemigos sin recibir daño."),
     ("Completa {n} misiones diarias.", "Has completado {n} misiones diarias."),
     ("Recorre {n} kilómetros a pie.", "Has recorrido {n} kilómetros a pie.")),
    (("Termina el prólogo.", "Has terminado el prólogo."),
     ("Derrota al jefe final en Difícil.", "Has derrotado al jefe final en Difícil."),
     ("Encuentra la sala secreta del faro.", "Has encontrado la sala secreta del faro."),
     ("Cambia el atuendo de tu personaje.", "Has cambiado el atuendo de tu personaje."),
     ("Únete a una sesión multijugador.", "Te has unido a una sesión multijugador.")),
    "Este logro es secreto. Sigue jugando para desbloquearlo.",
)
_JA = Words(
    ("最初の一歩", "鉄の意志", "狙撃の名手", "夜更かし", "コレクター", "無傷の達人", "探検家", "チームプレイヤー",
     "スピード狂", "サバイバー", "トレジャーハンター", "策士", "一匹狼", "ベテラン", "完璧主義者", "マラソン",
     "幸運の一撃", "建築の達人", "世界旅行者", "伝説"),
    (("いずれかのモードで {n} 回勝利する", "いずれかのモードで {n} 回勝利した"),
     ("隠された遺物を {n} 個集める", "隠された遺物を {n} 個集めた"),
     ("ダメージを受けずに敵を {n} 体倒す", "ダメージを受けずに敵を {n} 体倒した"),
     ("デイリーミッションを {n} 回クリアする", "デイリーミッションを {n} 回クリアした"),
     ("徒歩で {n} km 移動する", "徒歩で {n} km 移動した")),
    (("プロローグをクリアする", "プロローグをクリアした"),
     ("難易度ハードでラスボスを倒す", "難易度ハードでラスボスを倒した"),
     ("灯台の隠し部屋を見つける", "灯台の隠し部屋を見つけた"),
     ("キャラクターの衣装を変更する", "キャラクターの衣装を変更した"),
     ("マルチプレイのセッションに参加する", "マルチプレイのセッションに参加した")),
    "これはシークレット実績です。プレイを続けてロックを解除しましょう。",
)
_BY_LANGUAGE = {"en": _EN, "fr": _FR, "de": _DE, "es": _ES, "ja": _JA}
LANGUAGES = tuple(_BY_LANGUAGE)  # the languages with their own words (README, "Generating datasets")

# Title names (never translated: a title keeps its name in every market, as on the service).
TITLE_FIRST = ("Starfall", "Harbor", "Iron", "Neon", "Crimson", "Silent", "Frozen", "Golden", "Hollow", "Solar",
               "Shadow", "Thunder", "Emerald", "Broken", "Lunar", "Savage", "Arcane", "Rogue", "Velvet", "Atomic")
TITLE_SECOND = ("Tactics", "Run", "Legends", "Frontier", "Odyssey", "Protocol", "Kingdoms", "Drift", "Siege",
                "Chronicles", "Rally", "Dominion", "Horizon", "Arena", "Saga", "Uprising", "Outpost", "Circuit",
                "Requiem", "Voyage")


def words(locale: str) -> tuple[Words, str]:
    """The words of ``locale``'s language and a mark for each text: "" for a language with its
    own words; for any other the English words marked with the locale (`Legend [pl-PL]`), so that
    its datasets still differ from the English ones."""
    found = _BY_LANGUAGE.get(locale.split("-")[0].lower())
    return (found, "") if found else (_EN, f" [{locale}]")
