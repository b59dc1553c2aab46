import { createApp, watchEffect } from 'vue'
import { Loading } from 'vant'
import 'vant/es/loading/style'
import './styles.css'
import App from './App.vue'
import { router } from './router'
import { store } from './store'

// elder mode and the host's font setting: the root class switches every size at once
watchEffect(() => document.documentElement.classList.toggle('elder', store.elderMode))

createApp(App).use(router).use(Loading).mount('#app')
